"""Every fetch ends: a server that trickles its headers or its body fails `check` in bounded time.

The real CLI runs as a process against a real local server that sends one byte a second: each
byte arrives well within ``[fetch] timeout`` (10 s), so only the total deadline
(``max_fetch_seconds = 3``) can end the fetch. ``check`` must end within the deadline + 5 s,
print its table with the failure, and commit nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fixture_server import FixtureServer
from tests.reliability.harness import commit_count, parse_check_table, run_cli

MAX_FETCH_SECONDS = 3
SLACK_SECONDS = 5
PAGE = "<html><body><main>" + "A policy that never arrives. " * 40 + "</main></body></html>"
CHROMIUM = shutil.which("chromium") or shutil.which("/usr/bin/chromium")


def write_config(tmp_path: Path, policies: list[tuple[str, str, bool]]) -> Path:
    """A config with one policy per (service, url, js); fast deadline, slow read timeout."""
    config = tmp_path / "config.toml"
    tables = "".join(
        f'\n[[policy]]\nservice = "{service}"\ntype = "Privacy Policy"\nurl = "{url}"\n'
        f'select = "main"\njs = {"true" if js else "false"}\n'
        for service, url, js in policies
    )
    config.write_text(
        f'data_dir = "data"\n[fetch]\nallow_private_addresses = true\nper_host_delay = 0\n'
        f"timeout = 10\nmax_fetch_seconds = {MAX_FETCH_SECONDS}\nbrowser_timeout = 30\n"
        f"[notify]\nallow_private_addresses = true\n{tables}",
        encoding="utf-8",
    )
    return config


@pytest.mark.slow
@pytest.mark.parametrize("part", ["headers", "body"])
def test_check_ends_when_the_server_trickles(
    tmp_path: Path, fixture_server: FixtureServer, part: str
) -> None:
    url = fixture_server.trickle("/privacy", PAGE, interval=1.0, part=part)
    config = write_config(tmp_path, [("Trickle", url, False)])
    result = run_cli(config, "check", "--no-alerts", timeout=60)
    assert not result.traceback, result.describe()
    assert result.seconds < MAX_FETCH_SECONDS + SLACK_SECONDS, result.describe()
    status, detail = parse_check_table(result.stdout)[("Trickle", "Privacy Policy")]
    assert status == "FAILED", result.describe()
    assert "too slowly" in detail, result.describe()
    assert result.returncode == 1
    assert commit_count(tmp_path / "data" / "archive") == 0


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium at /usr/bin/chromium")
def test_check_ends_when_a_js_page_trickles(tmp_path: Path, fixture_server: FixtureServer) -> None:
    url = fixture_server.trickle("/privacy", PAGE, interval=1.0, part="body")
    config = write_config(tmp_path, [("Trickle JS", url, True)])
    result = run_cli(config, "check", "--no-alerts", timeout=90)
    assert not result.traceback, result.describe()
    # the browser's start-up is not the server's time: allow for it on a loaded machine
    assert result.seconds < MAX_FETCH_SECONDS + SLACK_SECONDS + 10, result.describe()
    status, detail = parse_check_table(result.stdout)[("Trickle JS", "Privacy Policy")]
    assert status == "FAILED" and "too slowly" in detail, result.describe()
    assert commit_count(tmp_path / "data" / "archive") == 0
