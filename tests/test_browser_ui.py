"""The pages in a real browser: headless Chromium (Debian's) driven by Playwright.

Search, open the hit, open its timeline, open a diff and check that inserted and deleted words
are visibly highlighted. Screenshots go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import Config
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion
from tests.conftest import seed_text
from webui import create_app
from webui.server import WebServer, make_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
NEW_PARAGRAPH = "Data retention: we delete server logs after 30 days."

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


@pytest.fixture
def server(make_config: Callable[..., Config]) -> Iterator[WebServer]:
    config = make_config(
        policies=[{"service": "WorkOptima", "type": "Privacy Policy",
                   "url": "https://workoptima.example/privacy", "language": "en"}]
    )  # fmt: skip
    text = seed_text("workoptima-privacy-policy.txt")
    changed = text.replace("January, 2020", "March, 2024").replace(
        "\nAdditionally, you retain", f"\n{NEW_PARAGRAPH}\nAdditionally, you retain"
    )
    day = datetime(2024, 3, 1, tzinfo=UTC)
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        archive.versions.record(NewVersion("WorkOptima", "Privacy Policy", text, day, FIRST_RECORD))
        archive.versions.record(
            NewVersion("WorkOptima", "Privacy Policy", changed, day + timedelta(days=30), CHANGE)
        )
        archive.sync_index()
        web = make_server(create_app(config, archive=archive), "127.0.0.1", 0, threads=4)
        thread = threading.Thread(target=web.run, daemon=True)
        thread.start()
        try:
            yield web
        finally:
            web.close()
            thread.join(10)


def test_search_open_history_and_diff_in_chromium(server: WebServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url, wait_until="load")
            page.fill("input[name=q]", "retention 30 days")
            page.press("input[name=q]", "Enter")
            hit = page.locator("a.hit-link").first
            expect(hit).to_contain_text("WorkOptima")
            expect(page.locator(".snippet mark").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "browser-1-search.png"), full_page=True)

            hit.click()
            expect(page.locator("h1")).to_contain_text("WorkOptima · Privacy Policy")
            expect(page.locator(".policy-text")).to_contain_text(NEW_PARAGRAPH)
            page.click("a[href='#timeline']")
            rows = page.locator("#timeline tbody tr")
            expect(rows).to_have_count(2)
            page.screenshot(path=str(ARTIFACTS / "browser-2-policy.png"), full_page=True)

            rows.first.locator("a.diff-link").click()
            inserted = page.locator(".diff ins").filter(has_text="Data retention")
            deleted = page.locator(".diff del").first
            expect(inserted).to_be_visible()
            expect(deleted).to_be_visible()
            expect(deleted).to_contain_text("January")
            styles = page.evaluate(
                """() => ['ins', 'del'].map(tag => {
                    const s = getComputedStyle(document.querySelector('.diff ' + tag));
                    return [s.backgroundColor, s.textDecorationLine];
                })"""
            )
            (ins_bg, _), (del_bg, del_line) = styles
            assert ins_bg not in ("rgba(0, 0, 0, 0)", "transparent") and ins_bg != del_bg
            assert del_bg not in ("rgba(0, 0, 0, 0)", "transparent")
            assert "line-through" in del_line
            page.screenshot(path=str(ARTIFACTS / "browser-3-diff.png"), full_page=True)

            page.click("a.view-side")
            expect(page.locator(".diff-side .text.new ins").first).to_be_visible()
            page.keyboard.press("n")
            page.screenshot(path=str(ARTIFACTS / "browser-4-diff-side.png"), full_page=True)
            assert not errors, errors  # no CSP violation, no script error
        finally:
            browser.close()
