"""The operator's views in headless Chromium: log in, open the failing policies, open the page
that failed; the script in it and in the error text never runs. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.auth_support import PASSWORD
from tests.browser import DESKTOP, NEEDS_CHROMIUM, screenshot, watch_dialogs
from tests.support import serving
from tests.test_admin_operator import ADMIN, site  # noqa: F401 - the fixture
from webui import create_app
from webui.server import WebServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [*NEEDS_CHROMIUM, pytest.mark.slow]


@pytest.fixture
def server(site) -> Iterator[WebServer]:  # noqa: F811 - the fixture imported above
    site.cli("check", code=1)
    with serving(create_app(site.cli.config)) as web:
        yield web


def test_failed_pages_and_error_texts_never_run_script(server: WebServer, browser: Browser) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport=DESKTOP)
    dialogs = watch_dialogs(page)
    page.goto(server.url + "/admin/failing", wait_until="load")
    page.fill("input[name=username]", ADMIN)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    expect(page.locator("h1")).to_have_text("Failing policies")
    walled = page.locator("tr", has_text="Walled")
    expect(walled).to_contain_text("Sign in to Acme <img src=x onerror=alert(1)>")
    screenshot(page, "admin-operator-failing")

    for service in ("Walled", "Down"):
        page.goto(server.url + "/admin/failing", wait_until="load")
        page.locator("tr", has_text=service).locator("a", has_text="page").click()
        page.wait_for_load_state("load")
        expect(page.locator("body")).to_contain_text("<script>alert(")
    assert page.evaluate("document.querySelectorAll('script, img').length") == 0

    page.goto(server.url + "/admin/webhooks", wait_until="load")
    expect(page.locator("h1")).to_contain_text("Webhooks")
    screenshot(page, "admin-operator-webhooks")
    assert dialogs == []
