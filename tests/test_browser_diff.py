"""The rendered diff in a real browser (Debian's Chromium driven by Playwright, see
tests/browser.py): formatting-only changes hidden by default and shown by the toggle, with and
without JavaScript; wording changes marked inside the rendered text, not in Markdown source."""

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
from tests.support import SETEXT_POLICY, serving
from webui import create_app
from webui.server import WebServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser

OLD = SETEXT_POLICY.replace("Welcome to our", "Welcome to *our*")
NEW = OLD.replace("*our*", "**our**").replace("for as long as", "for one year after")
DIFF = "policies/WorkOptima/Privacy%20Policy/diff"

pytestmark = NEEDS_CHROMIUM


@pytest.fixture
def server(make_config: Callable[..., Config]) -> Iterator[WebServer]:
    config = make_config()
    day = datetime(2024, 3, 1, tzinfo=UTC)
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        archive.versions.record(NewVersion("WorkOptima", "Privacy Policy", OLD, day, FIRST_RECORD))
        archive.versions.record(
            NewVersion("WorkOptima", "Privacy Policy", NEW, day + timedelta(days=30), CHANGE)
        )
        with serving(create_app(config, archive=archive)) as web:
            yield web


def test_rendered_diff_hides_formatting_and_marks_words_in_the_text(
    server: WebServer, browser: Browser
) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport=DESKTOP)
    errors = watch_errors(page)
    page.goto(server.url + DIFF, wait_until="load")

    inserted = page.locator(".diff ins").filter(has_text="one year after")
    expect(inserted).to_be_visible()
    parent = inserted.evaluate("el => el.parentElement.tagName")
    assert parent in ("P", "LI", "H2"), parent
    assert inserted.evaluate("el => el.closest('pre, code, .text') === null")
    expect(page.locator(".diff h1").filter(has_text="Privacy Policy")).to_have_count(1)

    formatting = page.locator(".formatting-only")
    expect(formatting).to_have_count(1)
    expect(formatting).to_be_hidden()
    screenshot(page, "browser-diff-1-rendered")

    toggle = page.locator("a.formatting-toggle")
    toggle.click()
    expect(formatting).to_be_visible()
    expect(formatting.locator("p").filter(has_text="Welcome to our privacy policy")).to_be_visible()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert "formatting=show" in page.url
    screenshot(page, "browser-diff-2-formatting")
    toggle.click()
    expect(formatting).to_be_hidden()

    page.click("a.view-inline")  # the Markdown source view keeps today's diff
    expect(page.locator(".diff-inline .text ins").filter(has_text="one year after")).to_be_visible()
    expect(page.locator(".diff-inline .formatting-only")).to_be_hidden()
    assert not errors, errors  # no CSP violation, no script error


def test_the_toggle_is_a_link_without_javascript(server: WebServer, browser: Browser) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server.url + DIFF, wait_until="load")
    formatting = page.locator(".formatting-only")
    expect(formatting).to_be_hidden()
    page.click("a.formatting-toggle")
    expect(formatting).to_be_visible()
    assert "formatting=show" in page.url
    context.close()
