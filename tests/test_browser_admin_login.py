"""Logging in and out in a real browser (Debian's headless Chromium, driven by Playwright):
an admin page sends the visitor to the login form, a wrong password is refused with one
message, the right one leads back to the page asked for, and logging out ends the session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import Config
from tests.auth_support import PASSWORD, add_user, config_file
from tests.browser import DESKTOP, NEEDS_CHROMIUM, screenshot, watch_errors
from tests.support import serving
from webui import create_app
from webui.server import WebServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = NEEDS_CHROMIUM


@pytest.fixture
def server(make_config: Callable[..., Config]) -> Iterator[WebServer]:
    config = make_config()
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        path = config_file(config)
        add_user(path, "ada", "admin")
        add_user(path, "<b>vic</b>", "viewer")
        with serving(create_app(config, archive=archive)) as web:
            yield web


def test_login_admin_and_logout_in_chromium(server: WebServer, browser: Browser) -> None:
    from playwright.sync_api import expect

    base = server.url.rstrip("/")
    page = browser.new_page(viewport=DESKTOP)
    errors = watch_errors(page)

    page.goto(f"{base}/admin/users", wait_until="load")
    expect(page).to_have_url(f"{base}/login?next=/admin/users")
    expect(page.locator("header.site a.login")).to_have_text("Log in")

    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "not the password")
    page.click("form.admin-form button[type=submit]")
    expect(page.locator(".login-error")).to_contain_text("Wrong user name or password")
    screenshot(page, "browser-admin-1-login-refused", full_page=False)

    page.fill("input[name=password]", PASSWORD)
    page.click("form.admin-form button[type=submit]")
    expect(page).to_have_url(f"{base}/admin/users")
    expect(page.locator("h1")).to_have_text("Users")
    expect(page.locator("td.user-name").filter(has_text="<b>vic</b>")).to_have_count(1)
    assert page.locator("td.user-name b").count() == 0  # markup shown as text
    expect(page.locator("header.site .who")).to_have_text("ada")
    cookie = next(c for c in page.context.cookies() if c["name"] == "pa_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    screenshot(page, "browser-admin-2-users")

    page.click("nav.admin-nav a:text('Overview')")
    expect(page.locator(".whoami")).to_contain_text("Logged in as ada (admin).")

    page.click("header.site form.logout button")
    expect(page).to_have_url(f"{base}/")
    expect(page.locator("header.site a.login")).to_be_visible()
    page.goto(f"{base}/admin/", wait_until="load")
    expect(page).to_have_url(f"{base}/login?next=/admin/")
    assert not errors, errors  # no CSP violation, no script error
