"""``migrate-state --to``: state made by real commands in state.sqlite, copied to a real
PostgreSQL database, seen by the same commands once config.toml names the database."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.auth_support import add_user
from tests.conftest import seed_text
from tests.pages import policy_page
from tests.support import Cli

WORKOPTIMA = "workoptima-privacy-policy.txt"


@pytest.fixture
def cli(make_cli, fixture_server) -> Cli:
    fixture_server.set("/privacy", policy_page("WorkOptima", seed_text(WORKOPTIMA)))
    fixture_server.set("/gone", "missing", status=404)
    return make_cli(
        f"""
data_dir = "data"
[fetch]
allow_private_addresses = true
per_host_delay = 0
timeout = 5
[[policy]]
service = "WorkOptima"
type = "Privacy Policy"
url = "{fixture_server.url("/privacy")}"
select = "main"
[[policy]]
service = "Gone"
type = "Terms of Service"
url = "{fixture_server.url("/gone")}"
"""
    )


def _with_database(cli: Cli, url: str) -> Cli:
    text = cli.path.read_text(encoding="utf-8")
    cli.path.write_text(f'{text}\n[database]\nurl = "{url}"\n', encoding="utf-8")
    return cli


def test_state_moves_to_postgresql_and_the_commands_read_it_there(cli, postgres_url):
    cli("init")
    cli("check", code=None)
    add_user(cli.path, "editor", "editor")
    before = json.loads(cli("list", "--json").output)
    assert {p["service"] for p in before} == {"WorkOptima", "Gone"}

    moved = cli("migrate-state", "--to", postgres_url)
    assert "copied" in moved.output and f'url = "{postgres_url}"' in moved.output
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM policy_state").fetchone() == (2,)
        assert conn.execute("SELECT name FROM account_user").fetchall() == [("editor",)]
        failing = conn.execute(
            "SELECT failures FROM policy_state WHERE service = 'Gone'"
        ).fetchone()
        assert failing == (1,)

    again = cli("migrate-state", "--to", postgres_url, code=1)
    assert "already holds state" in again.output and "--force" in again.output
    assert len(again.output.strip().splitlines()) == 1
    cli("migrate-state", "--to", postgres_url, "--force")

    _with_database(cli, postgres_url)
    assert json.loads(cli("list", "--json").output) == before
    users = cli("user", "list").output
    assert "editor" in users
    add_user(cli.path, "second", "viewer")  # new ids after the copied ones
    with psycopg.connect(postgres_url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM account_user ORDER BY id")]
    assert len(ids) == 2 and ids[0] < ids[1]
    assert "1 unchanged" in cli("check", "WorkOptima").output  # validators came along


def test_bad_target_is_one_line(cli):
    cli("init")
    bad = cli("migrate-state", "--to", "mysql://x@127.0.0.1/db", code=2)
    assert "must be a URL such as" in bad.output
    down = cli("migrate-state", "--to", "postgresql://bob:secret@127.0.0.1:1/nope", code=1)
    assert "cannot connect to PostgreSQL" in down.output and "secret" not in down.output
