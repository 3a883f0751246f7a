"""One read model for "the policies with their status" and "a policy's history": the CLI's
``list --json`` and ``history --json`` agree with the JSON API row for row, and the /policies
page shows the same rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient

from archive.cli import main
from archive.config import load_config
from tests.conftest import seed_text
from tests.pages import policy_page
from webui import close_app, create_app

TEXT = seed_text("workoptima-privacy-policy.txt")
# (service, path on the fixture site)
POLICIES = [
    ("Acme: EU", "/acme"),  # changed once; ":" is not allowed in file names
    ("Failing", "/failing"),
    ("Never", "/never"),  # configured, never checked
    ("Shrinks", "/shrinks"),  # its new text is held back
]
GONE = ("Gone", "/gone")  # recorded, then taken out of the config


def write_config(path: Path, site: Any, policies: list[tuple[str, str]]) -> None:
    body = (
        'data_dir = "data"\n[fetch]\nallow_private_addresses = true\nper_host_delay = 0\n'
        "timeout = 5\n[notify]\nallow_private_addresses = true\n"
    )
    for service, page in policies:
        body += (
            f'[[policy]]\nservice = "{service}"\ntype = "Terms"\n'
            f'url = "{site.url(page)}"\nselect = "main"\n'
        )
    path.write_text(body, encoding="utf-8")


@pytest.fixture
def tracked(tmp_path: Path, fixture_server: Any) -> Iterator[tuple[Callable[..., Result], Path]]:
    """An archive with a changed, a failing, a never-checked, a held-back policy and one in
    git that the config no longer names."""
    config = tmp_path / "config.toml"
    runner = CliRunner()

    def cli(*args: str, code: int = 0) -> Result:
        result = runner.invoke(main, ["--config", str(config), *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    for service, page in [*POLICIES, GONE]:
        fixture_server.set(page, policy_page(service, TEXT))
    write_config(config, fixture_server, [*POLICIES, GONE])
    cli("init")
    for service in ("Acme: EU", "Shrinks", "Gone"):
        cli("check", service)
    fixture_server.set("/acme", policy_page("Acme", TEXT.replace("January, 2020", "June, 2026")))
    fixture_server.set("/shrinks", policy_page("Shrinks", TEXT[: len(TEXT) // 5]))
    fixture_server.set("/failing", "gone", status=404)
    cli("check", "Acme: EU")
    cli("check", "Shrinks")
    cli("check", "Failing", code=1)
    write_config(config, fixture_server, POLICIES)
    yield cli, config


@pytest.fixture
def client(tracked: tuple[Callable[..., Result], Path]) -> Iterator[FlaskClient]:
    app = create_app(load_config(str(tracked[1])))
    yield app.test_client()
    close_app(app)


def cli_json(cli: Callable[..., Result], *args: str) -> Any:
    return json.loads(cli(*args).output)


def test_list_and_the_api_agree_row_for_row(tracked, client) -> None:
    cli, _ = tracked
    listing = cli_json(cli, "list", "--json")
    api = client.get("/api/policies").get_json()
    assert [(r["service"], r["type"]) for r in listing] == [
        ("Acme: EU", "Terms"),
        ("Failing", "Terms"),
        ("Gone", "Terms"),
        ("Never", "Terms"),
        ("Shrinks", "Terms"),
    ]
    assert [(r["service"], r["type"]) for r in api] == [(r["service"], r["type"]) for r in listing]
    for row, web in zip(listing, api, strict=True):
        status = web["status"]
        assert row == {
            "service": web["service"],
            "type": web["type"],
            "versions": web["versions"],
            "configured": web["configured"],
            "last_check": status["last_check"],
            "last_change": web["last_change"],
            "failures": status["failures"],
            "last_error": status["last_error"],
            "health": status["health"],
            "last_success": status["last_success"],
            "transient": status["transient"],
            "held_back_since": status["held_back_since"],
            "language": web["language"],
        }
    by_name = {r["service"]: r for r in listing}
    assert by_name["Acme: EU"]["versions"] == 2 and by_name["Acme: EU"]["configured"]
    assert by_name["Never"]["health"] == "not_checked" and by_name["Never"]["last_check"] is None
    assert by_name["Failing"]["health"] == "failing" and by_name["Failing"]["failures"] == 1
    assert by_name["Shrinks"]["health"] == "held_back" and by_name["Shrinks"]["held_back_since"]
    assert by_name["Shrinks"]["versions"] == 1
    assert by_name["Gone"]["configured"] is False and by_name["Gone"]["versions"] == 1


def test_the_list_table_says_what_the_json_says(tracked) -> None:
    cli, _ = tracked
    lines = {line.split("  ")[0]: line for line in cli("list").output.splitlines()[2:]}
    assert set(lines) == {"Acme: EU", "Failing", "Gone", "Never", "Shrinks"}
    assert lines["Never"].rstrip().endswith("not checked") and " never " in lines["Never"]
    assert "failing ×1: " in lines["Failing"]
    assert "held back since " in lines["Shrinks"]
    assert lines["Acme: EU"].rstrip().endswith("ok")


def test_history_and_the_api_versions_agree(tracked, client) -> None:
    cli, _ = tracked
    for service in ("Acme: EU", "Gone"):
        history = cli_json(cli, "history", service, "Terms", "--json")
        summary = next(r for r in client.get("/api/policies").get_json() if r["service"] == service)
        versions = client.get(summary["links"]["versions"])
        assert versions.status_code == 200
        assert versions.get_json() == history
        assert summary["current"] == history[-1]
    kinds = [v["kind"] for v in cli_json(cli, "history", "Acme: EU", "Terms", "--json")]
    assert kinds == ["first_record", "change"]


def test_the_policies_page_and_home_count_the_same_rows(tracked, client) -> None:
    page = client.get("/policies").get_data(as_text=True)
    assert page.count("Acme: EU") == 1 and "Acme- EU" not in page
    counts = client.get("/api/").get_json()["counts"]
    listing = cli_json(tracked[0], "list", "--json")
    assert counts["policies"] == len(listing) == 5
    assert counts["versions"] == sum(r["versions"] for r in listing)
    assert counts["failing"] == sum(1 for r in listing if r["health"] == "failing")
