"""Volatile text: a visible "generated at 12:03:44" must not be a change when the policy says
to ignore it, and is stored as served all the same."""

from __future__ import annotations

import json
from pathlib import Path

from tests.pages import policy_page
from tests.reliability.harness import git, parse_check_table, run_cli

BODY = "We keep your personal data for 30 days and then delete it. " * 30


def page(stamp: str, days: int = 30) -> bytes:
    text = BODY.replace("30 days", f"{days} days") + f"\n\nThis page was generated at {stamp}."
    return policy_page("Acme", text)


def write_config(tmp_path: Path, server, ignore: list[str] | None) -> Path:
    lines = [
        f'data_dir = "{tmp_path / "data"}"',
        "[fetch]",
        "allow_private_addresses = true",
        "per_host_delay = 0",
        "[[policy]]",
        'service = "Acme"',
        'type = "Privacy Policy"',
        f'url = "{server.url("/volatile")}"',
        'select = "main"',
    ]
    if ignore is not None:
        lines.append(f"ignore = {json.dumps(ignore)}")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def result(stdout: str) -> str:
    return parse_check_table(stdout)[("Acme", "Privacy Policy")][0]


def test_ignored_spans_do_not_count_but_are_stored(tmp_path, fixture_server):
    config = write_config(tmp_path, fixture_server, [r"generated at \d\d:\d\d:\d\d"])
    run_cli(config, "init")
    fixture_server.set("/volatile", page("12:03:44"))
    assert result(run_cli(config, "check").stdout) == "first record"
    fixture_server.set("/volatile", page("12:09:01"))
    assert result(run_cli(config, "check").stdout) == "unchanged"
    fixture_server.set("/volatile", page("12:15:30", days=90))  # a real change, and a new stamp
    assert result(run_cli(config, "check").stdout) == "changed"
    archive = tmp_path / "data" / "archive"
    assert git(archive, "rev-list", "--count", "main").strip() == "2"
    stored = git(archive, "show", "main:Acme/Privacy Policy.md")
    assert "generated at 12:15:30" in stored and "90 days" in stored


def test_without_ignore_the_timestamp_is_a_change(tmp_path, fixture_server):
    config = write_config(tmp_path, fixture_server, None)
    run_cli(config, "init")
    fixture_server.set("/volatile", page("12:03:44"))
    assert result(run_cli(config, "check").stdout) == "first record"
    fixture_server.set("/volatile", page("12:09:01"))
    assert result(run_cli(config, "check").stdout) == "changed"


def test_a_bad_ignore_pattern_is_one_line_naming_the_policy(tmp_path, fixture_server):
    config = write_config(tmp_path, fixture_server, ["generated at ("])
    done = run_cli(config, "init")
    assert done.returncode == 1
    assert "'Acme'" in done.stderr and "ignore pattern" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
