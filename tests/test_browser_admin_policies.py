"""Adding and tuning a policy in a real browser (Debian's Chromium, through Playwright).

Log in, paste the fixture site's URL, click an element inside the sandboxed preview frame (our
picker script reports it by postMessage), see the Markdown preview update, save, see the first
record; then tune the selector and see the diff the re-extraction caused. The fetched page
carries script and event-handler payloads: no dialog may open and no page script may run,
and the console must stay free of errors (a CSP refusal of our own picker would show there).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from archive.app import Archive
from archive.config import load_config
from tests.auth_support import PASSWORD, add_user
from tests.browser import NEEDS_CHROMIUM, screenshot, watch_dialogs, watch_errors
from tests.fixture_server import FixtureServer
from tests.support import serving
from tests.test_admin_policies import POLICY_TEXT, write_config
from webui import create_app
from webui.server import WebServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = NEEDS_CHROMIUM

PAGE = f"""<!doctype html>
<html><head><title>Acme privacy</title>
<script>window.parent.postMessage({{type: "pa-pick", selector: "body"}}, "*");
alert("page script")</script>
</head><body onload="alert('onload')">
<nav><a href="/">Home</a></nav>
<main><article id="policy"><h1>Privacy policy</h1><p class="clauses">{POLICY_TEXT}</p>
<section class="extra"><h2>Contact</h2><p>Write to privacy@acme.example for anything.</p></section>
</article></main>
<img src="x" onerror="alert('img')">
</body></html>"""


@pytest.fixture
def server(tmp_path: Path, fixture_server: FixtureServer) -> Iterator[tuple[WebServer, str]]:
    url = fixture_server.set("/privacy", PAGE)
    path = write_config(tmp_path)
    config = load_config(path, environ={})
    Archive.open(config, writer=True, create=True).close()
    add_user(path, "edith", "editor")
    with serving(create_app(config)) as web:
        yield web, url


def test_add_a_policy_by_clicking_in_the_preview_then_tune_it(
    server: tuple[WebServer, str], browser: Browser
) -> None:
    from playwright.sync_api import expect

    web, site_url = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = watch_errors(page)
    dialogs = watch_dialogs(page)

    page.goto(web.url + "login")
    page.fill("input[name=username]", "edith")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/")

    page.goto(web.url + "admin/policies/new")
    page.fill("input[name=url]", site_url)
    page.click("#fetch-page")
    page.wait_for_url("**/admin/policies/new?preview=*")

    frame = page.frame_locator("#page-frame")
    expect(frame.locator("html[data-picker=ready]")).to_have_count(1)
    frame.locator("p.clauses").click()
    expect(page.locator("#select")).to_have_value("#policy > p.clauses")
    expect(page.locator("#picked")).to_contain_text("p.clauses")
    expect(page.locator("#policy-form")).to_have_attribute("data-preview", "fresh")
    expect(page.locator("#preview-stats")).to_contain_text("words")
    expect(page.locator("#preview-text")).to_contain_text("clause 59")
    expect(page.locator("#preview-text")).not_to_contain_text("Contact")
    screenshot(page, "admin-policy-preview")

    page.fill("input[name=service]", "Acme")
    page.fill("input[name=type]", "Privacy Policy")
    page.fill("input[name=language]", "en")
    page.click("#save-policy")
    page.wait_for_url("**/admin/policies/Acme/Privacy%20Policy?request=*")
    expect(page.locator(".request-outcome").first).to_have_text("first_record")

    page.click("#tune")
    page.wait_for_url("**/edit")
    expect(page.locator("#select")).to_have_value("#policy > p.clauses")
    page.fill("#select", "#policy")
    expect(page.locator("#preview-text")).to_contain_text("Contact")
    page.click("#save-policy")
    page.wait_for_url("**/admin/policies/Acme/Privacy%20Policy?request=*")
    expect(page.locator(".request-outcome").first).to_have_text("reextracted")
    inserted = page.locator(".reextract-diff ins").filter(has_text="Contact")
    expect(inserted.first).to_be_visible()
    expect(page.locator("a.request-diff").first).to_be_visible()
    screenshot(page, "admin-policy-reextract")

    assert dialogs == [], dialogs
    assert errors == [], errors
