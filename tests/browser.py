"""What the browser tests share: Debian's headless Chromium driven by Playwright.

A module marks itself with ``pytestmark = NEEDS_CHROMIUM`` and takes the ``browser`` fixture
(registered from ``conftest.py``); it serves its app with :func:`tests.support.serving`.
Screenshots go to test-artifacts/ at the repository root. Playwright is imported only when a
browser is launched, so the other tests run without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
DESKTOP = {"width": 1280, "height": 900}
NEEDS_CHROMIUM = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A fresh headless Chromium for the test, closed after it."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def watch_errors(page: Page) -> list[str]:
    """The console errors and uncaught script errors of the page, as they come."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def watch_dialogs(page: Page) -> list[str]:
    """The messages of the dialogs (alert, confirm, prompt) the page opens; each is dismissed."""
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return dialogs


def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    """Save what the page shows as test-artifacts/NAME.png."""
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)
