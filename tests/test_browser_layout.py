"""Phone layout, the dark theme, the service page and the policy filter in a real browser
(Debian's Chromium driven by Playwright, see tests/browser.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import Config
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion
from store.state import PolicyState
from tests.browser import DESKTOP, NEEDS_CHROMIUM, screenshot, watch_errors
from tests.conftest import seed_text
from tests.support import serving
from webui import create_app
from webui.server import WebServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser

PHONE = {"width": 390, "height": 844}
WIDE_TABLE = "\n".join(
    [
        "| " + " | ".join(f"Category of personal data number {i}" for i in range(8)) + " |",
        "|" + "---|" * 8,
        "| "
        + " | ".join(f"https://tracker{i}.example/a-very-long-path/{i}" for i in range(8))
        + " |",
    ]
)
SERVICES = ("Spotify", "Spotless Cleaning", "WorkOptima", "Backoffice.ee", "Zalando")

pytestmark = NEEDS_CHROMIUM


@pytest.fixture
def server(make_config: Callable[..., Config]) -> Iterator[WebServer]:
    """Five services (two documents each, some failing), one with a wide table and long URLs."""
    config = make_config()
    base = seed_text("workoptima-privacy-policy.txt")
    day = datetime(2024, 3, 1, tzinfo=UTC)
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        for n, service in enumerate(SERVICES):
            for type_ in ("Privacy Policy", "Terms of Service"):
                link = f"https://{service.lower()}.example/" + "x" * 120
                text = f"# {service} {type_}\n\n{WIDE_TABLE}\n\n{link}\n\n{base}"
                archive.versions.record(NewVersion(service, type_, text, day, FIRST_RECORD))
                archive.versions.record(
                    NewVersion(
                        service, type_, text.replace("30 days", f"{40 + n} days"),
                        day + timedelta(days=10 + n), CHANGE,
                    )
                )  # fmt: skip
            if n % 2:
                archive.state.put(
                    PolicyState(service=service, type="Terms of Service", failures=3,
                                last_check=day + timedelta(days=20),
                                last_error="could not connect to " + "x" * 90 + ".example")
                )  # fmt: skip
        archive.sync_index()
        with serving(create_app(config, archive=archive)) as web:
            yield web


def test_no_page_is_wider_than_a_phone(server: WebServer, browser: Browser) -> None:
    page = browser.new_page(viewport=PHONE)
    errors = watch_errors(page)
    policy = "policies/Spotify/Privacy%20Policy"
    paths = ["", "policies", "changes", "when?phrase=30+days", "when?phrase=x",
             "search?q=privacy", "search?q=spotify&history=1", policy, policy + "/diff",
             policy + "/diff?view=side", "services/Spotify", "export", "search?q=NOT"]  # fmt: skip
    widths = {}
    for path in paths:
        page.goto(server.url + path, wait_until="load")
        widths[path] = page.evaluate("document.documentElement.scrollWidth")
        assert page.locator("h1:not(article h1)").count() == 1, path  # not the policy's own
    page.goto(server.url + "policies", wait_until="load")
    screenshot(page, "layout-phone-policies")
    assert {p: w for p, w in widths.items() if w > PHONE["width"]} == {}
    scrolls = page.evaluate(
        "() => { const box = document.querySelector('.table-scroll');"
        " return [box.scrollWidth > box.clientWidth, getComputedStyle(box).overflowX]; }"
    )
    assert scrolls == [True, "auto"]  # the table scrolls inside its box
    assert [e for e in errors if "status of 400" not in e] == []  # search?q=NOT is a 400


def test_facets_fold_behind_a_button_on_phones_only(server: WebServer, browser: Browser) -> None:
    from playwright.sync_api import expect

    phone = browser.new_page(viewport=PHONE)
    phone.goto(server.url + "search?q=privacy", wait_until="load")
    facets = phone.locator("aside.facets")
    expect(facets).to_be_hidden()
    top = phone.locator("a.hit-link").first.bounding_box()
    assert top is not None and top["y"] < 600  # the first result is not pushed down
    phone.locator(".facets-box > summary").click()
    expect(facets).to_be_visible()
    expect(facets.locator("a", has_text="Spotify").first).to_be_visible()
    wide = browser.new_page(viewport=DESKTOP)
    wide.goto(server.url + "search?q=privacy", wait_until="load")
    expect(wide.locator("aside.facets")).to_be_visible()
    expect(wide.locator(".facets-box > summary")).to_be_hidden()


def test_dark_theme_follows_the_system(server: WebServer, browser: Browser) -> None:
    backgrounds = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme, viewport=PHONE)
        page = context.new_page()
        page.goto(server.url + "policies/Spotify/Privacy%20Policy/diff", wait_until="load")
        backgrounds[scheme] = page.evaluate(
            "() => [document.body, document.querySelector('.diff .change') || document.body]"
            ".map(el => getComputedStyle(el).backgroundColor)"
        )
        text = page.evaluate("getComputedStyle(document.body).color")
        screenshot(page, f"layout-{scheme}-diff")
        context.close()
        backgrounds[scheme + "-text"] = [text]

    def brightness(rgb: str) -> float:
        r, g, b = (int(x) for x in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
        return (r * 299 + g * 587 + b * 114) / 1000

    assert all(brightness(c) > 200 for c in backgrounds["light"]), backgrounds
    assert all(brightness(c) < 60 for c in backgrounds["dark"]), backgrounds
    assert brightness(backgrounds["dark-text"][0]) > 180, backgrounds


def test_find_a_service_from_the_header_and_filter_the_list(
    server: WebServer, browser: Browser
) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport=DESKTOP)
    errors = watch_errors(page)
    page.goto(server.url + "changes", wait_until="load")
    page.fill("header input[name=q]", "spotify")
    page.press("header input[name=q]", "Enter")
    match = page.locator("a.service-match").first
    expect(match).to_have_text("Spotify")
    expect(page.locator(".service-matches li").first).to_contain_text("Spotify — 2 documents")
    match.click()
    expect(page.locator("h1")).to_have_text("Spotify")
    rows = page.locator("table.service-documents tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Privacy Policy")
    expect(page.locator("table.service-documents")).to_contain_text("not checked")

    page.goto(server.url + "policies", wait_until="load")
    expect(page.locator("a.service-link")).to_have_count(10)
    page.fill("form.filters input[name=q]", "SPOT")
    page.press("form.filters input[name=q]", "Enter")
    expect(page.locator("a.service-link")).to_have_count(4)  # Spotify and Spotless
    assert "q=SPOT" in page.url
    page.select_option("select[name=sort]", "status")
    page.click("form.filters button")
    first = page.locator("table.policies tbody tr").first
    expect(first).to_contain_text("Spotless Cleaning")
    expect(first).to_contain_text("failing ×3")
    expect(page.locator("form.filters input[name=q]")).to_have_value("SPOT")
    screenshot(page, "layout-policies-filter")
    assert not errors, errors
