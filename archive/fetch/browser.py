"""Rendering pages that need JavaScript, in headless Chromium driven by Playwright.

One browser per :class:`BrowserRenderer`, started on first use, owned by one worker thread:
Playwright's sync API is bound to the thread that started it, so every page is rendered
there, one at a time, and callers from any thread wait for their result.

With the SSRF guard on, two layers keep the browser on public addresses: a route handler that
aborts requests to refused hosts before Chromium sends them, and the :class:`GuardProxy`
through which Chromium sends everything (it also covers redirect hops and DNS rebinding).

Navigation and settling share one deadline, ``min([fetch] browser_timeout, max_fetch_seconds)``;
the caller waits a few seconds more at most, and if the worker is still stuck then (a page
that hangs the renderer makes even reading the DOM block), the worker is abandoned and the next
page gets a new one. A page that ends on Chromium's own error page (``chrome-error://``,
"This site can't be reached") is a failed fetch, never a document.
"""

from __future__ import annotations

import contextlib
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import (
    Browser,
    BrowserContext,
    Playwright,
    ProxySettings,
    Route,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from archive.config import FetchSettings
from archive.errors import FetchError
from archive.fetch.deadline import Deadline
from archive.fetch.guard import AddressPolicy, Resolver, check_host_allowed, parse_target, resolve
from archive.fetch.proxy import BLOCKED_HEADER, GuardProxy

DEFAULT_BROWSERS = ("chromium", "chromium-browser", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
]
CALLER_GRACE_SECONDS = 5.0  # how much longer than the deadline a caller waits for the worker
CHROME_ERROR_URL = "chrome-error://"
_NET_ERROR = re.compile(  # the page's error code, from its data or its "error-code" element
    r""""errorCode":"(ERR_[A-Z0-9_]+)"|class="error-code"[^>]*>(?:<!--.*?-->)?\s*(ERR_[A-Z0-9_]+)"""
)
_CHROME_ERROR_PAGE = re.compile(r"""<body[^>]*class=["'][^"']*\bneterror\b""", re.IGNORECASE)
NO_BROWSER = (
    "page needs a browser: install Debian's chromium (apt-get install chromium) or "
    "set [fetch] browser_path"
)


@dataclass(frozen=True)
class Rendered:
    """A rendered page: its DOM as HTML and the main response's metadata."""

    final_url: str
    status: int
    html: str
    headers: dict[str, str]


def find_browser(browser_path: str) -> str:
    """The Chromium executable: ``browser_path`` if set, else chromium on PATH."""
    if browser_path:
        if Path(browser_path).is_file():
            return browser_path
        raise FetchError(
            f"[fetch] browser_path {browser_path!r} does not exist; {NO_BROWSER}", transient=False
        )
    for name in DEFAULT_BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise FetchError(NO_BROWSER, transient=False)


def request_refusal(
    url: str,
    policy: AddressPolicy,
    resolver: Resolver = resolve,
    cache: dict[tuple[str, int], str | None] | None = None,
) -> str | None:
    """Why the browser may not send a request to ``url`` (None: it may).

    Only http(s) URLs reach the network; ``cache`` keeps one decision per (host, port).
    """
    try:
        target = parse_target(url)
    except FetchError as exc:
        return exc.reason
    key = (target.host, target.port)
    if cache is not None and key in cache:
        return cache[key]
    try:
        check_host_allowed(target.host, target.port, policy=policy, resolver=resolver, url=url)
        why = None
    except FetchError as exc:
        why = exc.reason
    if cache is not None:
        cache[key] = why
    return why


def route_handler(
    policy: AddressPolicy, refusals: list[str], resolver: Resolver = resolve
) -> Callable[[Route], None]:
    """A Playwright route handler that aborts requests the guard refuses (noted in
    ``refusals``) and lets the others go on."""
    cache: dict[tuple[str, int], str | None] = {}

    def handle(route: Route) -> None:
        why = request_refusal(route.request.url, policy, resolver, cache)
        if why is None:
            route.continue_()
        else:
            refusals.append(why)
            route.abort("blockedbyclient")

    return handle


@dataclass
class _Job:
    url: str
    future: Future[Rendered]
    started: threading.Event = field(default_factory=threading.Event)
    started_at: float = 0.0
    worker: threading.Thread | None = None

    def start(self, worker: threading.Thread) -> None:
        self.started_at, self.worker = time.monotonic(), worker
        self.started.set()

    def running_for(self) -> float:
        return time.monotonic() - self.started_at


def render_limit(settings: FetchSettings) -> tuple[float, str]:
    """Seconds a page may take in the browser, and the setting that says so."""
    if settings.max_fetch_seconds <= settings.browser_timeout:
        return settings.max_fetch_seconds, "[fetch] max_fetch_seconds"
    return settings.browser_timeout, "[fetch] browser_timeout"


def too_slow_in_browser(url: str, settings: FetchSettings) -> FetchError:
    limit, setting = render_limit(settings)
    host = urlsplit(url).hostname or url
    return FetchError(
        f"{host} sent its response too slowly: {url} did not finish loading in the browser "
        f"within {limit:g} s ({setting}); it will be retried",
        transient=True,
        url=url,
    )


def chrome_error(url: str, final_url: str, html: str) -> FetchError | None:
    """The failure behind Chromium's own error page, if the page ended on one."""
    if not final_url.startswith(CHROME_ERROR_URL) and not _CHROME_ERROR_PAGE.search(html):
        return None
    code = _NET_ERROR.search(html)
    what = f"net::{code.group(1) or code.group(2)}" if code else "no error code"
    host = urlsplit(url).hostname
    return FetchError(
        f"the browser ended on its own error page ({what}) while loading {url}, not on the "
        f"document; the site {host} (or a page it sent the browser to) may be down — it will "
        "be retried",
        transient=True,
        url=url,
    )


class BrowserRenderer:
    """Renders pages in one lazily started Chromium; ``render`` may be called from any thread."""

    def __init__(
        self, settings: FetchSettings, policy: AddressPolicy, resolver: Resolver = resolve
    ) -> None:
        self._settings = settings
        self._policy = policy
        self._resolver = resolver
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def render(self, url: str) -> Rendered:
        """Load ``url``, wait for load and network idle, return the DOM; raises FetchError."""
        job = _Job(url, Future())
        with self._lock:
            if self._closed:
                raise RuntimeError("the fetcher is closed")
            if self._thread is None:
                self._start_worker()
            self._jobs.put(job)
        # one page at a time: the pages queued before this one are bounded the same way
        job.started.wait()
        limit = render_limit(self._settings)[0] + CALLER_GRACE_SECONDS
        try:
            return job.future.result(timeout=max(0.0, limit - job.running_for()))
        except FutureTimeout:
            self._abandon(job.worker)
            raise too_slow_in_browser(url, self._settings) from None

    def _start_worker(self) -> None:
        """Start a worker thread on ``self._jobs`` (called with the lock held)."""
        self._thread = threading.Thread(
            target=self._work, args=(self._jobs,), name="fetch-browser", daemon=True
        )
        self._thread.start()

    def _abandon(self, worker: threading.Thread | None) -> None:
        """Leave a stuck worker behind (it stops once its page returns, if ever) and give the
        pages queued behind it to a new worker."""
        with self._lock:
            if worker is None or self._thread is not worker:
                return
            stuck, self._jobs = self._jobs, queue.SimpleQueue()
            moved = 0
            with contextlib.suppress(queue.Empty):
                while True:
                    job = stuck.get_nowait()
                    if job is not None:
                        self._jobs.put(job)
                        moved += 1
            stuck.put(None)
            self._thread = None
            if moved and not self._closed:
                self._start_worker()

    def close(self) -> None:
        """Close the browser and stop the worker thread."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
            if thread is not None:
                self._jobs.put(None)
        if thread is not None:
            thread.join()

    # ------------------------------------------------------------ the worker thread

    def _work(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        session = _Session(self._settings, self._policy, self._resolver)
        try:
            while (job := jobs.get()) is not None:
                if job.future.set_running_or_notify_cancel():
                    job.start(threading.current_thread())
                    try:
                        job.future.set_result(session.render(job.url))
                    except Exception as exc:  # noqa: BLE001 -- re-raised in the caller's thread
                        job.future.set_exception(exc)
        finally:
            session.close()


class _Session:
    """The Playwright driver, the browser and the guard proxy, started on first use."""

    def __init__(self, settings: FetchSettings, policy: AddressPolicy, resolver: Resolver) -> None:
        self.settings = settings
        self.policy = policy
        self.resolver = resolver
        self.playwright: Playwright | None = None
        self.browser: Browser | None = None
        self.proxy: GuardProxy | None = None

    def start(self) -> Browser:
        if self.browser is not None and self.browser.is_connected():
            return self.browser
        self.close()
        executable = find_browser(self.settings.browser_path)
        proxy: ProxySettings | None = None
        if not self.policy.allow_private:
            self.proxy = GuardProxy(
                self.policy,
                timeout=self.settings.timeout,
                idle_timeout=self.settings.browser_timeout,
                resolver=self.resolver,
            )
            proxy = {"server": self.proxy.start()}
        try:
            self.playwright = sync_playwright().start()
            self.browser = self.playwright.chromium.launch(
                executable_path=executable,
                headless=True,
                chromium_sandbox=False,
                args=LAUNCH_ARGS,
                proxy=proxy,
                timeout=self.settings.browser_timeout * 1000,
            )
        except PlaywrightError as exc:
            self.close()
            raise FetchError(
                f"could not start the browser {executable} ({exc}); check that "
                f"it runs, or {NO_BROWSER}",
                transient=False,
            ) from None
        return self.browser

    def render(self, url: str) -> Rendered:
        browser = self.start()
        refusals: list[str] = []
        seen = self.proxy.refused if self.proxy else 0
        deadline = Deadline(render_limit(self.settings)[0])
        try:
            context = browser.new_context(
                user_agent=self.settings.user_agent, service_workers="block", accept_downloads=False
            )
        except PlaywrightError as exc:
            raise _navigation_error(exc, url, []) from None
        try:
            if not self.policy.allow_private:
                context.route("**/*", route_handler(self.policy, refusals, self.resolver))
            page = context.new_page()
            response = page.goto(url, wait_until="load", timeout=_ms_left(deadline))
            # some pages never stop polling: then take the DOM as it is after load
            with contextlib.suppress(PlaywrightTimeout):
                page.wait_for_load_state("networkidle", timeout=_ms_left(deadline))
            headers = response.all_headers() if response else {}
            rendered = Rendered(
                final_url=page.url,
                status=response.status if response else 200,
                html=page.content(),
                headers=headers,
            )
        except PlaywrightTimeout:
            raise too_slow_in_browser(url, self.settings) from None
        except PlaywrightError as exc:
            raise _navigation_error(exc, url, refusals + self._proxy_refusals(seen)) from None
        finally:
            _close_context(context)
        if BLOCKED_HEADER.lower() in rendered.headers:
            reasons = self._proxy_refusals(seen) or ["the SSRF guard refused the page"]
            raise FetchError(reasons[-1], transient=False, url=url)
        error = chrome_error(url, rendered.final_url, rendered.html)
        if error is not None:
            refusals += self._proxy_refusals(seen)
            if refusals:  # the guard stopped a navigation: say so, not "the site is down"
                raise FetchError(refusals[-1], transient=False, url=url)
            raise error
        return rendered

    def _proxy_refusals(self, seen: int) -> list[str]:
        return self.proxy.refusals_since(seen) if self.proxy else []

    def close(self) -> None:
        if self.browser is not None:
            with contextlib.suppress(PlaywrightError):  # it may have died already
                self.browser.close()
            self.browser = None
        if self.playwright is not None:
            self.playwright.stop()
            self.playwright = None
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None


def _close_context(context: BrowserContext) -> None:
    with contextlib.suppress(PlaywrightError):  # the browser died; start() relaunches it
        context.close()


def _ms_left(deadline: Deadline) -> float:
    return max(1.0, deadline.remaining() * 1000)


def _navigation_error(exc: PlaywrightError, url: str, refusals: list[str]) -> FetchError:
    message = exc.message.splitlines()[0] if exc.message else str(exc)
    if refusals and ("ERR_BLOCKED_BY_CLIENT" in message or "ERR_TUNNEL" in message):
        return FetchError(refusals[-1], transient=False, url=url)
    if "Download is starting" in message:
        return FetchError(
            f"{url} is a file download (a PDF?), not a page: fetch it without js = true",
            transient=False,
            url=url,
        )
    if "ERR_CERT" in message or "ERR_SSL" in message:
        return FetchError(
            f"TLS error loading {url} in the browser ({message}); the site's "
            "certificate may be invalid or expired",
            transient=False,
            url=url,
        )
    host = urlsplit(url).hostname
    return FetchError(
        f"the browser could not load {url} ({message}); the site {host} may be "
        "down — it will be retried",
        transient=True,
        url=url,
    )
