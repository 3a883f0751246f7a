"""Guarded HTTP GETs with urllib3.

Each hop (the first request and every redirect) is checked by the SSRF guard and sent to a
validated address, with the host name kept for the Host header, SNI and certificate checks.
Connection pools are kept per (scheme, address, port, host name) and reused across threads.
One :class:`~archive.fetch.deadline.Deadline` (``[fetch] max_fetch_seconds``) bounds the whole
fetch, every hop and every socket read included.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    LocationValueError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.response import BaseHTTPResponse, HTTPResponse
from urllib3.util import make_headers, parse_url
from urllib3.util.ssl_ import create_urllib3_context

from archive.config import FetchSettings
from archive.errors import FetchError
from archive.fetch.deadline import (
    Deadline,
    DeadlineHTTPPool,
    DeadlineHTTPSPool,
    FetchClock,
    resolve_within,
    too_slow,
)
from archive.fetch.guard import AddressPolicy, IPAddress, Resolver, Target, check_host_allowed
from archive.fetch.guard import parse_target as _parse_target
from archive.fetch.guard import resolve as system_resolve
from archive.fetch.model import Fetched
from archive.fetch.status import REDIRECTS, content_type_error, status_error
from archive.fetch.throttle import Throttle

ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,application/pdf,*/*;q=0.8"
CHUNK = 64 * 1024
DISCARD_LIMIT = 64 * 1024  # bytes of an unwanted body read to keep the connection reusable
MAX_POOLS = 256
_DECODABLE = frozenset({"identity", "", *HTTPResponse.CONTENT_DECODERS})

PoolKey = tuple[str, IPAddress, int, str]


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
        self._policy = policy
        self._throttle = throttle
        self._resolver = resolver
        self._timeout = urllib3.Timeout(connect=settings.timeout, read=settings.timeout)
        self._clock = FetchClock()
        self._headers = {
            "User-Agent": settings.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": make_headers(accept_encoding=True)["accept-encoding"],
        }
        self._pools: OrderedDict[PoolKey, urllib3.HTTPConnectionPool] = OrderedDict()
        self._ssl_context: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    def get(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> Fetched:
        """GET ``url``, following redirects; a 304 answer gives ``not_modified=True``.

        The whole fetch must end within ``[fetch] max_fetch_seconds`` (time spent waiting for
        the throttle not counted), or it fails with a transient "too slowly" error.
        """
        deadline = Deadline(self._settings.max_fetch_seconds)
        with self._clock.running(deadline):
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
            addresses = check_host_allowed(
                target.host,
                target.port,
                policy=self._policy,
                resolver=resolve_within(self._resolver, deadline, url),
                url=current,
            )
            queued = time.monotonic()
            with self._throttle.slot(target.host):
                deadline.extend(time.monotonic() - queued)  # our queue, not the server's time
                if deadline.expired():
                    raise too_slow(url, deadline)
                response = self._send(target, addresses, current, headers, deadline)
                location = response.headers.get("Location")
                if response.status not in REDIRECTS or not location:
                    return self._finish(response, url, current, etag, last_modified)
                _discard(response)
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
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()

    # ------------------------------------------------------------------ one request

    def _send(
        self,
        target: Target,
        addresses: list[IPAddress],
        url: str,
        headers: dict[str, str],
        deadline: Deadline,
    ) -> BaseHTTPResponse:
        try:
            path = parse_url(url).request_uri
        except LocationValueError as exc:
            raise FetchError(
                f"{url!r} is not a valid URL ({exc})", transient=False, url=url
            ) from None
        headers = {**headers, "Host": target.authority}
        failure: HTTPError | None = None
        for address in addresses:  # the next address only when connecting failed
            timeout = self._settings.timeout
            try:
                return self._pool(target, address).urlopen(
                    "GET",
                    path,
                    headers=headers,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    decode_content=True,
                    assert_same_host=False,
                    release_conn=False,
                    timeout=urllib3.Timeout(
                        connect=deadline.bound(timeout), read=deadline.bound(timeout)
                    ),
                )
            except (NewConnectionError, ConnectTimeoutError) as exc:
                failure = exc
            except (HTTPError, OSError) as exc:
                raise self._network_error(exc, url) from exc
        assert failure is not None
        raise self._network_error(failure, url) from failure

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
            _discard(response)
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
        if error is not None:
            _discard(response)
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

    def _read_body(self, response: BaseHTTPResponse, url: str) -> bytes:
        """Read the decompressed body, stopping as soon as it passes the size cap."""
        limit = self._settings.max_body_bytes
        too_large = FetchError(
            f"{url} is larger than the {limit:,}-byte limit ([fetch] max_body_bytes, counted "
            "after decompression); raise the limit if the document really is that big",
            transient=False,
            url=url,
            status=response.status,
        )
        encoding = (response.headers.get("Content-Encoding") or "").strip().lower()
        unknown = [e for e in (p.strip() for p in encoding.split(",")) if e not in _DECODABLE]
        length = response.headers.get("Content-Length") or ""
        try:
            if unknown:
                raise FetchError(
                    f"{url} sent a body compressed with {', '.join(unknown)}, "
                    "which we cannot decode",
                    transient=False,
                    url=url,
                    status=response.status,
                )
            if encoding in ("", "identity") and length.isdigit() and int(length) > limit:
                raise too_large
            chunks, total = [], 0
            for chunk in response.stream(CHUNK, decode_content=True):
                total += len(chunk)
                if total > limit:
                    raise too_large
                chunks.append(chunk)
        except FetchError:
            response.close()
            raise
        except (HTTPError, OSError) as exc:
            response.close()
            raise self._network_error(exc, url) from exc
        finally:
            response.release_conn()
        return b"".join(chunks)

    def _network_error(self, exc: BaseException, url: str) -> FetchError:
        deadline = self._clock.deadline
        if deadline is not None and deadline.expired():
            return too_slow(url, deadline)
        return network_error(exc, url, self._settings.timeout)

    def _pool(self, target: Target, address: IPAddress) -> urllib3.HTTPConnectionPool:
        key = (target.scheme, address, target.port, target.host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            common = {
                "timeout": self._timeout,
                "maxsize": self._settings.concurrency,
                "block": False,
                "retries": False,
                "clock": self._clock,
            }
            if target.scheme == "https":
                pool = DeadlineHTTPSPool(
                    str(address),
                    target.port,
                    ssl_context=self._tls(),
                    cert_reqs="CERT_REQUIRED",
                    server_hostname=target.host,
                    assert_hostname=target.host,
                    **common,
                )
            else:
                pool = DeadlineHTTPPool(str(address), target.port, **common)
            self._pools[key] = pool
            evicted = self._pools.popitem(last=False)[1] if len(self._pools) > MAX_POOLS else None
        if evicted is not None:
            evicted.close()
        return pool

    def _tls(self) -> ssl.SSLContext:
        """One verifying TLS context for all pools (called with the lock held)."""
        if self._ssl_context is None:
            context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
            context.load_default_certs()
            self._ssl_context = context
        return self._ssl_context


def _discard(response: BaseHTTPResponse) -> None:
    """Drop an unwanted body: read a small one (keeping the connection), else close."""
    try:
        if len(response.read(DISCARD_LIMIT + 1, decode_content=False)) > DISCARD_LIMIT:
            response.close()
    except (HTTPError, OSError):
        response.close()
    finally:
        response.release_conn()


def _fix_header_encoding(value: str) -> str:
    """Header values arrive decoded as Latin-1; most non-ASCII Locations are really UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def network_error(exc: BaseException, url: str, timeout: float) -> FetchError:
    """A :class:`FetchError` with an actionable reason for a urllib3 or socket error."""
    host = urlsplit(url).hostname or url
    if isinstance(exc, NewConnectionError):
        cause = str(exc).rsplit(": ", 1)[-1]
        reason, transient = (
            (f"could not connect to {host} ({cause}); the site may be down — it will be retried"),
            True,
        )
    elif isinstance(exc, ConnectTimeoutError):
        reason, transient = (
            (
                f"timed out connecting to {host} after {timeout:g} s "
                "([fetch] timeout); it will be retried"
            ),
            True,
        )
    elif isinstance(exc, ReadTimeoutError | TimeoutError):
        reason, transient = (
            (f"{host} sent nothing for {timeout:g} s ([fetch] timeout); it will be retried"),
            True,
        )
    elif isinstance(exc, SSLError | ssl.SSLError):
        reason, transient = (
            (f"TLS error with {host}: {exc}; the site's certificate may be invalid or expired"),
            False,
        )
    elif isinstance(exc, DecodeError):
        reason, transient = f"{url} sent a corrupt compressed body ({exc})", False
    elif isinstance(exc, ProtocolError):
        reason, transient = (f"the connection to {host} broke ({exc}); it will be retried"), True
    else:
        reason, transient = f"network error with {host}: {exc}; it will be retried", True
    return FetchError(reason, transient=transient, url=url)
