"""The :class:`Fetcher`: one object, shared by all threads, that fetches documents."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType

from archive.config import FetchSettings
from archive.errors import FetchError
from archive.fetch.browser import BrowserRenderer
from archive.fetch.guard import AddressPolicy, IPNetwork, check_host_allowed, parse_target
from archive.fetch.http import HttpClient
from archive.fetch.model import Fetched
from archive.fetch.status import status_error
from archive.fetch.throttle import Throttle

RENDERED_CONTENT_TYPE = "text/html; charset=utf-8"


class Fetcher:
    """Fetches documents over http(s), or renders them in Chromium (``js=True``).

    Thread-safe: the scheduler's workers share one. Requests pass the SSRF guard (unless
    ``settings.allow_private_addresses``), at most ``settings.concurrency`` run at once, and
    requests to one host start ``settings.per_host_delay`` seconds apart.
    ``allow_networks`` lists networks reachable even with the guard on (e.g. an intranet).
    ``throttle`` replaces the in-process limiter (a fetch queue's workers share one in Redis:
    ``archive.queue.limiter.SharedThrottle``).
    """

    def __init__(
        self,
        settings: FetchSettings,
        *,
        allow_networks: Iterable[str | IPNetwork] = (),
        throttle: Throttle | None = None,
    ) -> None:
        self.settings = settings
        self._policy = AddressPolicy.build(settings.allow_private_addresses, allow_networks)
        self._throttle = throttle or Throttle(settings.concurrency, settings.per_host_delay)
        self._http = HttpClient(settings, self._policy, self._throttle)
        self._browser = BrowserRenderer(settings, self._policy)

    def fetch(
        self,
        url: str,
        *,
        js: bool = False,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Fetched:
        """Fetch ``url``; raise :class:`FetchError` (with ``transient``) when it fails.

        ``etag``/``last_modified`` (from the last fetch) make the request conditional: an
        unchanged document gives ``Fetched(not_modified=True, status=304, body=b"")``.
        ``js=True`` renders the page in the browser (conditional requests do not apply).
        """
        if not js:
            return self._http.get(url, etag=etag, last_modified=last_modified)
        target = parse_target(url)
        check_host_allowed(target.host, target.port, policy=self._policy, url=url)
        with self._throttle.slot(target.host):
            pass  # take this host's turn; the browser renders one page at a time anyway
        page = self._browser.render(url)
        if not 200 <= page.status <= 299:
            raise status_error(page.status, page.final_url, page.headers.get)
        body = page.html.encode("utf-8")
        if len(body) > self.settings.max_body_bytes:
            raise FetchError(
                f"{url} rendered to more than the {self.settings.max_body_bytes:,}-byte limit "
                "([fetch] max_body_bytes)",
                transient=False,
                url=url,
                status=page.status,
            )
        return Fetched(
            url=url,
            final_url=page.final_url,
            status=page.status,
            body=body,
            content_type=RENDERED_CONTENT_TYPE,
            etag=page.headers.get("etag"),
            last_modified=page.headers.get("last-modified"),
            fetched_at=datetime.now(UTC),
            not_modified=False,
            rendered=True,
        )

    def close(self) -> None:
        """Close pooled connections and the browser (if it was started)."""
        self._browser.close()
        self._http.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
