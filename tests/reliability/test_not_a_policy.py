"""Only policies become versions: login walls, captcha walls, garbled text and the browser's
own error page are failures of `check`, never commits; real policies that merely mention
signing in, or carry a login box in their header, and UTF-16 pages without a BOM are recorded
(the latter with their real text).

The real CLI runs as a process against a real local server; the archive is inspected with git.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from archive.config import Source
from archive.errors import ExtractError
from archive.extract import extract
from archive.extract.charset import decode_html
from tests.conftest import seed_text
from tests.fixture_server import FixtureServer
from tests.pages import policy_page
from tests.reliability.harness import git, parse_check_table, run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("/usr/bin/chromium")
BLURB = (
    "Acme keeps your team's documents, calendars and invoices in one place. Thousands of "
    "companies trust Acme to run their back office every day. "
)
LOGIN_WALL = f"""<!doctype html><html><head><title>Sign in | Acme</title></head><body>
<main><h1>Sign in to continue</h1><p>{BLURB * 2}</p>
<form method="post" action="/session"><label>Email <input type="email" name="email"></label>
<label>Password <input type="password" name="password"></label>
<button>Sign in</button></form><p><a href="/reset">Forgot your password?</a></p></main>
</body></html>"""
CAPTCHA_WALL = f"""<!doctype html><html><head><title>Acme</title></head><body>
<main><h2>One moment, please</h2><p>Before you continue to Acme, please verify you are human.
Press &amp; Hold to confirm you are a human (and not a bot).</p><p>{BLURB * 2}</p>
<div class="challenge" id="px-widget"></div></main></body></html>"""
WORKOPTIMA = seed_text("workoptima-privacy-policy.txt")
ESTONIAN = seed_text("backoffice-ee-uldtingimused-et.txt")


def with_login_box(page: str) -> str:
    """A real policy page whose header has a sign-in form and a "Sign in" link."""
    box = (
        '<header class="account"><a href="/login">Sign in</a> or <a href="/join">sign up</a>'
        '<form action="/session"><input name="user"><input type="password" name="pw">'
        "<button>Log in</button></form></header>"
    )
    return page.replace("<body>", "<body>" + box, 1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(tmp_path: Path, policies: list[tuple[str, str, bool]]) -> Path:
    config = tmp_path / "config.toml"
    tables = "".join(
        f'\n[[policy]]\nservice = "{service}"\ntype = "Privacy Policy"\nurl = "{url}"\n'
        f'select = "main"\njs = {"true" if js else "false"}\n'
        for service, url, js in policies
    )
    config.write_text(
        'data_dir = "data"\n[fetch]\nallow_private_addresses = true\nper_host_delay = 0\n'
        "timeout = 5\nbrowser_timeout = 20\nmax_fetch_seconds = 20\n"
        f"[notify]\nallow_private_addresses = true\n{tables}",
        encoding="utf-8",
    )
    return config


def check_and_judge(
    tmp_path: Path, policies: list[tuple[str, str, bool]]
) -> tuple[dict[tuple[str, str], tuple[str, str]], dict[str, str | None], Path]:
    """Run `check` then `list --json`: the table, each service's full last error, the repo."""
    config = write_config(tmp_path, policies)
    result = run_cli(config, "check", "--no-alerts", timeout=120)
    assert not result.traceback, result.describe()
    table = parse_check_table(result.stdout)
    listed = run_cli(config, "list", "--json")
    errors = {item["service"]: item["last_error"] for item in json.loads(listed.stdout)}
    return table, errors, tmp_path / "data" / "archive"


def files_in_history(repo: Path) -> set[str]:
    if not (repo / ".git").exists():
        return set()
    done = git(repo, "log", "--all", "--name-only", "--format=")
    return {line for line in done.splitlines() if line.strip()}


@pytest.mark.slow
def test_walls_and_garbled_pages_fail_and_real_policies_are_recorded(
    tmp_path: Path, fixture_server: FixtureServer
) -> None:
    site = fixture_server
    latin1_as_utf8 = policy_page("Tingimused", ESTONIAN).encode("cp1252", "replace")
    utf16_as_utf8 = policy_page("WorkOptima", WORKOPTIMA).encode("utf-16-le")  # no BOM
    login_box = with_login_box(policy_page("WorkOptima", WORKOPTIMA))
    policies = [
        ("Login Wall", site.set("/login-wall", LOGIN_WALL), False),
        ("Captcha Wall", site.set("/captcha", CAPTCHA_WALL), False),
        ("Garbled", site.set("/garbled", latin1_as_utf8), False),
        ("With Login Box", site.set("/policy", login_box), False),
        ("UTF-16", site.set("/utf16", utf16_as_utf8), False),  # labelled utf-8 by the fixture
    ]
    table, errors, repo = check_and_judge(tmp_path, policies)
    expected_failures = {
        "Login Wall": "login wall",
        "Captcha Wall": "captcha or bot wall",
        "Garbled": "does not decode cleanly",
    }
    for service, reason in expected_failures.items():
        assert table[(service, "Privacy Policy")][0] == "FAILED", table
        assert reason in (errors[service] or ""), errors
    recorded = files_in_history(repo)
    assert not any(name.startswith(tuple(expected_failures)) for name in recorded), recorded
    assert table[("With Login Box", "Privacy Policy")][0] == "first record", (table, errors)
    assert table[("UTF-16", "Privacy Policy")][0] == "first record", (table, errors)
    stored = git(repo, "show", "HEAD:UTF-16/Privacy Policy.md")
    assert "WorkOptima" in stored and "\x00" not in stored and "\ufffd" not in stored


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium at /usr/bin/chromium")
def test_the_browsers_error_page_is_a_failure(
    tmp_path: Path, fixture_server: FixtureServer
) -> None:
    refused = f"http://127.0.0.1:{free_port()}/privacy"  # nothing listens there
    # a page that sends the browser on to the refused address once loaded: Chromium then
    # shows its own "This site can't be reached" page, with status 200 from the first page
    moved = fixture_server.set(
        "/moved",
        f"<html><body><main>{BLURB}</main><script>addEventListener('load', () => "
        f"setTimeout(() => location.href = {refused!r}, 50))</script></body></html>",
    )
    table, errors, repo = check_and_judge(
        tmp_path, [("Refused JS", refused, True), ("Moved JS", moved, True)]
    )
    for service in ("Refused JS", "Moved JS"):
        assert table[(service, "Privacy Policy")][0] == "FAILED", table
        assert "ERR_CONNECTION_REFUSED" in (errors[service] or ""), errors
    assert "error page" in (errors["Moved JS"] or "")
    assert files_in_history(repo) == set()


# ------------------------------------------------------------ the same, at the extract level

SOURCE = Source(url="https://example.test/privacy")


def extract_error(body: bytes | str, content_type: str = "text/html; charset=utf-8") -> str:
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(ExtractError) as info:
        extract(raw, content_type, SOURCE.url, SOURCE)
    return str(info.value)


@pytest.mark.parametrize(
    "title",
    ["Sign in", "Sign in | Acme", "Log in to Acme", "Login", "Sign in – Google Accounts"],
)
def test_sign_in_titles_are_login_walls(title: str) -> None:
    page = f"<html><head><title>{title}</title></head><body><main><p>{BLURB * 2}</p></main>"
    assert "login wall" in extract_error(page)


def test_password_field_on_a_short_page_is_a_login_wall() -> None:
    page = (
        f"<html><head><title>Acme</title></head><body><main><p>{BLURB * 2}</p>"
        '<form><input type="PASSWORD" name="p"></form></main></body></html>'
    )
    assert "password field" in extract_error(page)


def test_walls_in_the_page_text() -> None:
    assert "login wall" in extract_error(LOGIN_WALL)
    assert "captcha" in extract_error(CAPTCHA_WALL)
    google = (
        "<html><body><p>Our systems have detected unusual traffic from your computer "
        f"network. {BLURB}</p>"
    )
    assert "captcha" in extract_error(google)


def test_policies_that_mention_signing_in_are_kept() -> None:
    page = with_login_box(policy_page("WorkOptima", WORKOPTIMA))
    assert "WorkOptima" in extract(page.encode(), "text/html", SOURCE.url, SOURCE)
    short = (
        "<html><head><title>Privacy</title></head><body><main><h1>Privacy</h1><p>To delete "
        f"your data, sign in and open your account settings. {BLURB}</p></main></body></html>"
    )
    assert "sign in" in extract(short.encode(), "text/html", SOURCE.url, SOURCE)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
@pytest.mark.parametrize("bom", [False, True])
def test_utf16_and_utf32_decode_with_or_without_a_bom(encoding: str, bom: bool) -> None:
    page = policy_page("Privacy", "Privacy Policy\nWe collect données personnelles. " * 20)
    body = page.encode(encoding)
    if bom:
        body = "\ufeff".encode(encoding) + body
    assert decode_html(body, "text/html; charset=utf-8").lstrip("\ufeff") == page
    assert decode_html(body, "").lstrip("\ufeff") == page
    text = extract(body, "text/html; charset=utf-8", SOURCE.url, SOURCE)
    assert "données personnelles" in text


def test_garbled_text_is_refused_but_a_trace_is_kept() -> None:
    page = policy_page("Privacy", ESTONIAN)
    reason = extract_error(page.encode("cp1252", "replace"))
    assert "does not decode cleanly" in reason and "U+FFFD" in reason
    nul_soup = "<html><body><main>" + "P\x00o\x00l\x00i\x00c\x00y " * 80 + "</main></body></html>"
    assert "does not decode cleanly" in extract_error(nul_soup.encode())
    trace = page.replace("Üldtingimused", "\ufffdldtingimused", 2)
    assert "ldtingimused" in extract(trace.encode(), "text/html", SOURCE.url, SOURCE)
