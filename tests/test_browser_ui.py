"""The pages in a real browser: headless Chromium (Debian's) driven by Playwright.

Search, open the hit, open its timeline, open a diff and check that inserted and deleted words
are visibly highlighted. Screenshots go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import Config
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion
from tests.browser import DESKTOP, NEEDS_CHROMIUM, screenshot, watch_errors
from tests.conftest import seed_text
from tests.support import serving
from webui import create_app
from webui.server import WebServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser

NEW_PARAGRAPH = "Data retention: we delete server logs after 30 days."

pytestmark = NEEDS_CHROMIUM


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
        with serving(create_app(config, archive=archive)) as web:
            yield web


def test_search_open_history_and_diff_in_chromium(server: WebServer, browser: Browser) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport=DESKTOP)
    errors = watch_errors(page)
    page.goto(server.url, wait_until="load")
    page.fill("input[name=q]", "retention 30 days")
    page.press("input[name=q]", "Enter")
    hit = page.locator("a.hit-link").first
    expect(hit).to_contain_text("WorkOptima")
    expect(page.locator(".snippet mark").first).to_be_visible()
    screenshot(page, "browser-1-search")

    hit.click()
    expect(page.locator("h1")).to_contain_text("WorkOptima · Privacy Policy")
    expect(page.locator(".policy-text")).to_contain_text(NEW_PARAGRAPH)
    page.click("a[href='#timeline']")
    rows = page.locator("#timeline tbody tr")
    expect(rows).to_have_count(2)
    screenshot(page, "browser-2-policy")

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
    screenshot(page, "browser-3-diff")

    page.click("a.view-side")
    expect(page.locator(".diff-side .text.new ins").first).to_be_visible()
    page.keyboard.press("n")
    screenshot(page, "browser-4-diff-side")
    assert not errors, errors  # no CSP violation, no script error
