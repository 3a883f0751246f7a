"""Guarded GETs of documents: redirects, conditional requests, content types, the size cap.

Built on :class:`~archive.fetch.client.GuardedClient`, which checks each hop (the first
request and every redirect) with the SSRF guard, sends it to a validated address and pools the
connections. One :class:`~archive.fetch.deadline.Deadline` (``[fetch] max_fetch_seconds``)
bounds the whole fetch, every hop and every socket read included.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import urljoin

from urllib3.response import BaseHTTPResponse
from urllib3.util import make_headers

from archive.config import FetchSettings
from archive.errors import FetchError
from archive.fetch.client import GuardedClient, discard
from archive.fetch.deadline import Deadline
from archive.fetch.guard import AddressPolicy, Resolver
from archive.fetch.guard import parse_target as _parse_target
from archive.fetch.guard import resolve as system_resolve
from archive.fetch.model import Fetched
from archive.fetch.status import REDIRECTS, content_type_error, status_error
from archive.fetch.throttle import Throttle

ERROR_PAGE_BYTES = 64 * 1024
"""Bytes of an HTTP error page kept with the error (the rest is dropped; a page whose
Content-Length says it is longer is not read at all)."""
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,application/pdf,*/*;q=0.8"


class HttpClient:
    """Plain GETs of documents: redirects, conditional requests, caps, guard. Thread-safe."""

    def __init__(
        self,
        settings: FetchSettings,
        policy: AddressPolicy,
        throttle: Throttle,
        resolver: Resolver = system_resolve,
    ) -> None:
        self._settings = settings
        self._throttle = throttle
        self._client = GuardedClient(
            policy,
            timeout=settings.timeout,
            total=settings.max_fetch_seconds,
            max_body=settings.max_body_bytes,
            pool_size=settings.concurrency,
            resolver=resolver,
        )
        self._headers = {
            "User-Agent": settings.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": make_headers(accept_encoding=True)["accept-encoding"],
        }

    def get(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> Fetched:
        """GET ``url``, following redirects; a 304 answer gives ``not_modified=True``.

        The whole fetch must end within ``[fetch] max_fetch_seconds`` (time spent waiting for
        the throttle not counted), or it fails with a transient "too slowly" error.
        """
        with self._client.deadline(self._settings.max_fetch_seconds) as deadline:
            return self._get(url, deadline, etag, last_modified)

    def _get(
        self, url: str, deadline: Deadline, etag: str | None, last_modified: str | None
    ) -> Fetched:
        headers = dict(self._headers)
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current, chain = url, [url]
        while True:
            target = _parse_target(current)
            addresses = self._client.addresses(target, current, deadline, origin=url)
            queued = time.monotonic()
            with self._throttle.slot(target.host):
                deadline.extend(time.monotonic() - queued)  # our queue, not the server's time
                if deadline.expired():
                    raise self._client.too_slow(url, deadline)
                response = self._client.open("GET", target, addresses, current, headers=headers)
                location = response.headers.get("Location")
                if response.status not in REDIRECTS or not location:
                    return self._finish(response, url, current, etag, last_modified)
                discard(response)
            current = urljoin(current, _fix_header_encoding(location))
            if current in chain:
                raise FetchError(
                    f"redirect loop: {' → '.join([*chain[chain.index(current) :], current])}; "
                    "the site keeps sending us in circles (it may need cookies or a browser: "
                    "try js = true)",
                    transient=False,
                    url=url,
                    status=response.status,
                )
            chain.append(current)
            if len(chain) - 1 > self._settings.max_redirects:
                raise FetchError(
                    f"more than {self._settings.max_redirects} redirects from {url} (last: "
                    f"{current}); use the final URL or raise [fetch] max_redirects",
                    transient=False,
                    url=url,
                    status=response.status,
                )

    def close(self) -> None:
        """Close every pooled connection."""
        self._client.close()

    # ------------------------------------------------------------------ the answer

    def _finish(
        self,
        response: BaseHTTPResponse,
        url: str,
        final_url: str,
        etag: str | None,
        last_modified: str | None,
    ) -> Fetched:
        status, header = response.status, response.headers.get
        fetched_at = datetime.now(UTC)
        if status == 304:
            discard(response)
            return Fetched(
                url=url,
                final_url=final_url,
                status=304,
                body=b"",
                content_type=header("Content-Type") or "",
                etag=header("ETag") or etag,
                last_modified=header("Last-Modified") or last_modified,
                fetched_at=fetched_at,
                not_modified=True,
            )
        content_type = header("Content-Type") or ""
        error = (
            status_error(status, final_url, header)
            if not 200 <= status <= 299
            else content_type_error(content_type, final_url, status)
        )
        if error is not None and not 200 <= status <= 299:
            self._keep_error_page(response, error, content_type, final_url)
            raise error
        if error is not None:
            discard(response)
            raise error
        body = self._read_body(response, final_url)
        return Fetched(
            url=url,
            final_url=final_url,
            status=status,
            body=body,
            content_type=content_type,
            etag=header("ETag"),
            last_modified=header("Last-Modified"),
            fetched_at=fetched_at,
            not_modified=False,
        )

    def _keep_error_page(
        self, response: BaseHTTPResponse, error: FetchError, content_type: str, url: str
    ) -> None:
        """Attach the start of an HTTP error page to ``error`` (the operator may look at it)."""
        try:
            body, _ = self._client.read(response, url, ERROR_PAGE_BYTES)
        except FetchError:
            return  # the error page itself broke off: the status says enough
        error.body, error.content_type = body, content_type

    def _read_body(self, response: BaseHTTPResponse, url: str) -> bytes:
        """Read the decompressed body, failing as soon as it passes the size cap."""
        limit = self._settings.max_body_bytes
        body, too_large = self._client.read(response, url, limit)
        if too_large:
            raise FetchError(
                f"{url} is larger than the {limit:,}-byte limit ([fetch] max_body_bytes, counted "
                "after decompression); raise the limit if the document really is that big",
                transient=False,
                url=url,
                status=response.status,
            )
        return body


def _fix_header_encoding(value: str) -> str:
    """Header values arrive decoded as Latin-1; most non-ASCII Locations are really UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value
