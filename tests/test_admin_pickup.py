"""A real ``run`` process picks up what the admin UI adds, without a restart.

Two real processes, as an operator runs them: ``run --no-web`` is the writer (it holds the
writer lock) and ``serve`` is the web UI (a reader). A policy added in the UI is declared in the
declarations repository; ``serve`` cannot take the writer lock, so its first check is a request
that ``run``'s pickup thread claims and carries out; a tune's re-extraction likewise. The UI
talks over real HTTP (urllib with a cookie jar).
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.auth_support import PASSWORD, add_user
from tests.fixture_server import FixtureServer
from tests.reliability.harness import run_cli, start_cli
from tests.test_admin_policies import PAGE
from tests.test_web_server import free_port

pytestmark = pytest.mark.slow


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not in time: {what}")
        time.sleep(0.1)


class Browser:
    """Cookies, CSRF tokens and forms over real HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[int, str, str]:
        try:
            with self.opener.open(self.base + path, timeout=30) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.geturl(), exc.read().decode()

    def post(self, path: str, fields: dict[str, str]) -> tuple[int, str, str]:
        body = urllib.parse.urlencode(fields).encode()
        try:
            with self.opener.open(self.base + path, data=body, timeout=60) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.geturl(), exc.read().decode()

    def token(self, path: str) -> str:
        match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', self.get(path)[2])
        assert match, path
        return match.group(1)

    def login(self, name: str) -> None:
        token = self.token("/login")
        status, url, _ = self.post(
            "/login", {"username": name, "password": PASSWORD, "csrf_token": token}
        )
        assert status == 200 and url.endswith("/admin/"), (status, url)

    def wait_request(self, url: str) -> dict[str, Any]:
        number = re.search(r"request=(\d+)", url)
        assert number, url

        def done() -> dict[str, Any] | None:
            data = json.loads(self.get(f"/api/admin/policies/requests/{number.group(1)}")[2])
            return data if data["status"] == "done" else None

        return wait_for(done, what=f"request {number.group(1)}")  # type: ignore[no-any-return]


def editor_site(tmp_path: Path, fixture_server: FixtureServer) -> Path:
    """An initialised archive whose config may fetch the fixture site, and an editor, edith."""
    fixture_server.set("/privacy", PAGE)
    config = tmp_path / "config.toml"
    config.write_text(
        'data_dir = "data"\n[fetch]\nallow_private_addresses = true\nper_host_delay = 0.0\n',
        encoding="utf-8",
    )
    assert run_cli(config, "init").returncode == 0
    add_user(config, "edith", "editor")
    return config


def wait_serving(browser: Browser, proc: subprocess.Popen[str], what: str) -> None:
    """Wait until the process ``proc`` answers the login page (failing if it exits)."""

    def up() -> bool:
        assert proc.poll() is None, proc.communicate()
        try:
            return browser.get("/login")[0] == 200
        except OSError:
            return False

    wait_for(up, what=what)


@pytest.fixture
def processes(tmp_path: Path, fixture_server: FixtureServer) -> Iterator[tuple[Path, Browser]]:
    config = editor_site(tmp_path, fixture_server)
    runner = start_cli(config, "run", "--no-web")
    port = free_port()
    server: subprocess.Popen[str] | None = None
    try:
        lock = tmp_path / "data" / ".writer.lock"
        wait_for(
            lambda: lock.is_file() and lock.read_text().strip() == str(runner.pid),
            what="run holds the writer lock",
        )
        server = start_cli(config, "serve", "--host", "127.0.0.1", "--port", str(port))
        browser = Browser(f"http://127.0.0.1:{port}")
        wait_serving(browser, server, what="serve answers")
        yield config, browser
    finally:
        for proc in (server, runner):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in (server, runner):
            if proc is not None:
                try:
                    _, err = proc.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    _, err = proc.communicate()
                assert "Traceback" not in err, err


def test_run_picks_up_a_policy_added_in_the_ui_and_carries_out_its_requests(
    processes: tuple[Path, Browser], fixture_server: FixtureServer
) -> None:
    config, browser = processes
    browser.login("edith")
    token = browser.token("/admin/policies/new")
    status, editor_url, _ = browser.post(
        "/admin/policies/new/fetch", {"url": fixture_server.url("/privacy"), "csrf_token": token}
    )
    assert status == 200 and "preview=" in editor_url
    page_id = editor_url.rsplit("preview=", 1)[1]
    status, detail_url, _ = browser.post(
        "/admin/policies/new",
        {
            "preview": page_id,
            "service": "Acme",
            "type": "Privacy Policy",
            "select": "#policy",
            "interval": "1h",
            "csrf_token": token,
        },
    )
    assert status == 200 and "request=" in detail_url, detail_url
    first = browser.wait_request(detail_url)  # serve is no writer: run claimed it
    assert first["outcome"] == "first_record", first
    listed = run_cli(config, "list")  # a reader beside the running writer
    assert listed.returncode == 0 and "Acme" in listed.stdout, listed.describe()

    path = "/admin/policies/Acme/Privacy%20Policy"
    edit_token = browser.token(f"{path}/edit")
    page = re.search(r'name="preview" value="([^"]+)"', browser.get(f"{path}/edit")[2])
    assert page
    status, tuned_url, _ = browser.post(
        f"{path}/edit",
        {
            "preview": page.group(1),
            "select": "#policy",
            "remove": "section.extra",
            "interval": "1h",
            "csrf_token": edit_token,
        },
    )
    assert status == 200 and "request=" in tuned_url
    tuned = browser.wait_request(tuned_url)
    assert tuned["outcome"] == "reextracted" and tuned["diff_url"], tuned

    status, _, body = browser.post(f"{path}/pause", {"csrf_token": edit_token})
    assert status == 200 and 'id="schedule-state">paused' in body
    status, recheck_url, _ = browser.post(f"{path}/recheck", {"csrf_token": edit_token})
    rechecked = browser.wait_request(recheck_url)  # a recheck runs even while paused
    assert rechecked["outcome"] == "unchanged", rechecked
    assert fixture_server.hits("/privacy") == 3  # preview, first check, recheck: no other


def test_the_ui_inside_run_hands_its_requests_to_runs_scheduler(
    tmp_path: Path, fixture_server: FixtureServer
) -> None:
    config = editor_site(tmp_path, fixture_server)
    port = free_port()
    runner = start_cli(config, "run", "--host", "127.0.0.1", "--port", str(port))
    try:
        browser = Browser(f"http://127.0.0.1:{port}")
        wait_serving(browser, runner, what="run serves the UI")
        browser.login("edith")
        token = browser.token("/admin/policies/new")
        _, editor_url, _ = browser.post(
            "/admin/policies/new/fetch",
            {"url": fixture_server.url("/privacy"), "csrf_token": token},
        )
        fields = {"service": "Acme", "type": "Privacy Policy", "select": "#policy"}
        fields |= {"preview": editor_url.rsplit("preview=", 1)[1], "csrf_token": token}
        _, detail_url, _ = browser.post("/admin/policies/new", fields)
        assert browser.wait_request(detail_url)["outcome"] == "first_record"
        _, removed_url, body = browser.post(
            "/admin/policies/Acme/Privacy%20Policy/remove", {"csrf_token": token}
        )
        assert removed_url.endswith("/admin/policies") and "no longer tracked" in body
    finally:
        runner.send_signal(signal.SIGINT)
        _, err = runner.communicate(timeout=30)
        assert runner.returncode == 0 and "Traceback" not in err, err
