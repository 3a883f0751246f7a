"""A state row that disagrees with git (a kill between the version commit and the state
update) must never make ``check`` record the same text again: git decides what changed."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from tests.fixture_server import FixtureServer
from tests.reliability.harness import (
    CliResult,
    Site,
    commit_count,
    file_at,
    parse_check_table,
    run_cli,
)


def check(config: Path) -> CliResult:
    return run_cli(config, "check", "--no-alerts")


def roll_back_state(state: Path, service: str) -> None:
    with contextlib.closing(sqlite3.connect(state)) as db, db:
        done = db.execute(
            "UPDATE policy_state SET text_hash='x', body_hash=NULL WHERE service=?", (service,)
        )
    assert done.rowcount == 1


def test_check_after_state_rollback_records_nothing(tmp_path: Path, fixture_server: FixtureServer):
    site = Site(fixture_server, 1)
    (policy,) = site.policies
    config = tmp_path / "config.toml"
    data = tmp_path / "data"
    config.write_text(site.config_toml(data), encoding="utf-8")
    versions = data / "archive"

    assert run_cli(config, "init").returncode == 0
    site.change([policy])
    first = check(config)
    assert first.returncode == 0, first.describe()
    assert parse_check_table(first.stdout)[policy.key][0] == "first record"
    site.change([policy])
    second = check(config)
    assert parse_check_table(second.stdout)[policy.key][0] == "changed", second.describe()
    commits = commit_count(versions)
    head_text = file_at(versions, "main", policy.path)
    assert head_text is not None and policy.token in head_text

    for attempt in range(3):
        roll_back_state(data / "state.sqlite", policy.service)
        again = check(config)
        assert not again.traceback, again.describe()
        assert again.returncode == 0, f"attempt {attempt + 1}: {again.describe()}"
        assert parse_check_table(again.stdout)[policy.key][0] == "unchanged", again.describe()
        assert commit_count(versions) == commits, f"attempt {attempt + 1} added a commit"
        assert file_at(versions, "main", policy.path) == head_text
