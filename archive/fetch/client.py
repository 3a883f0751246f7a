"""The one guarded outbound HTTP client: SSRF guard, pinned addresses, pools, caps, deadlines.

Every outbound HTTP request of the archive (page fetches, webhooks, Apprise's generic HTTP
kinds) goes through a :class:`GuardedClient`:

- the host is resolved once and *every* address must pass the SSRF guard
  (:mod:`archive.fetch.guard`); the request then goes to one of those addresses, never to the
  host name again (a second DNS answer cannot point elsewhere), with the name kept for the
  Host header, SNI and the certificate check;
- connections are pooled per (scheme, address, port, host name), shared by threads under a
  lock, at most ``MAX_POOLS`` pools kept (least recently used closed first);
- one :class:`~archive.fetch.deadline.Deadline` bounds a request (or a whole fetch with its
  redirects): DNS, connect, headers and every socket read of the body;
- bodies are read up to a cap (counted after decompression), never more.

:meth:`GuardedClient.request` is one request, redirects not followed; page fetches build on
:meth:`~GuardedClient.addresses`, :meth:`~GuardedClient.open` and
:meth:`~GuardedClient.read` (see :mod:`archive.fetch.http`).
"""

from __future__ import annotations

import ssl
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

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
from urllib3.util import parse_url
from urllib3.util.ssl_ import create_urllib3_context

from archive.errors import FetchError
from archive.fetch.deadline import (
    Deadline,
    DeadlineHTTPPool,
    DeadlineHTTPSPool,
    FetchClock,
    resolve_within,
)
from archive.fetch.guard import (
    AddressPolicy,
    IPAddress,
    Resolver,
    Target,
    check_host_allowed,
    parse_target,
)
from archive.fetch.guard import resolve as system_resolve

CHUNK = 64 * 1024
DISCARD_LIMIT = 64 * 1024  # bytes of an unwanted body read to keep the connection reusable
MAX_POOLS = 256
_DECODABLE = frozenset({"identity", "", *HTTPResponse.CONTENT_DECODERS})

PoolKey = tuple[str, IPAddress, int, str]


@dataclass(frozen=True)
class SettingNames:
    """The settings that govern a client, as its error messages name them."""

    timeout: str = "[fetch] timeout"
    total: str = "[fetch] max_fetch_seconds"
    allow_private: str = "[fetch] allow_private_addresses"
    doing: str = "fetching"
    """What a request is, in "… took more than N s" (e.g. "posting to")."""


FETCH_SETTINGS = SettingNames()


@dataclass(frozen=True)
class Response:
    """One answer: status, headers (case-insensitive) and the body read (up to the cap)."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    truncated: bool = False
    """True when the body was larger than the cap: ``body`` holds its first bytes only."""


class GuardedClient:
    """Guarded, pinned, pooled, capped HTTP requests. Thread-safe; close it after use.

    ``timeout`` bounds each wait (connect, next bytes), ``total`` a whole request (or a
    deadline started with :meth:`deadline`), ``max_body`` the bytes read of a body;
    ``pool_size`` connections are kept per pool. ``names`` are the settings that error
    messages point at.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        timeout: float,
        total: float,
        max_body: int,
        pool_size: int = 1,
        resolver: Resolver = system_resolve,
        names: SettingNames = FETCH_SETTINGS,
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self.total = total
        self.max_body = max_body
        self.names = names
        self._pool_size = max(1, pool_size)
        self._resolver = resolver
        self._clock = FetchClock()
        self._pools: OrderedDict[PoolKey, urllib3.HTTPConnectionPool] = OrderedDict()
        self._ssl_context: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ one request

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        total: float | None = None,
        max_body: int | None = None,
        allow_private: bool | None = None,
    ) -> Response:
        """Send one request (redirects are not followed) and read its answer.

        ``timeout``/``total``/``max_body`` override the client's; ``allow_private`` overrides
        the policy's switch for this request. A body longer than the cap is cut
        (``truncated=True``) and its connection closed. Raises :class:`FetchError`
        (a :class:`~archive.fetch.guard.BlockedAddressError` for a refused address).
        """
        limit = self.max_body if max_body is None else max_body
        with self.deadline(self.total if total is None else total) as deadline:
            target = parse_target(url)
            addresses = self.addresses(target, url, deadline, allow_private=allow_private)
            response = self.open(
                method, target, addresses, url, headers=headers or {}, body=body, timeout=timeout
            )
            data, truncated = self.read(response, url, limit)
        return Response(url, response.status, response.headers, data, truncated)

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()

    # ------------------------------------------------------------------ the steps

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[Deadline]:
        """Bound every request this thread makes in the block by one deadline."""
        with self._clock.running(Deadline(seconds)) as deadline:
            yield deadline

    def addresses(
        self,
        target: Target,
        url: str,
        deadline: Deadline,
        *,
        allow_private: bool | None = None,
        origin: str | None = None,
    ) -> list[IPAddress]:
        """Resolve the target's host within ``deadline`` and check every address.

        ``origin``: the URL a too-slow error names (the first of a redirect chain; default
        ``url``)."""
        slow_url = origin or url
        policy = self.policy
        if allow_private is not None and allow_private != policy.allow_private:
            policy = AddressPolicy(allow_private, policy.allow_networks)
        try:
            return check_host_allowed(
                target.host,
                target.port,
                policy=policy,
                resolver=resolve_within(self._resolver, deadline, slow_url),
                url=url,
                setting=self.names.allow_private,
            )
        except FetchError:
            if deadline.expired():
                raise self.too_slow(slow_url, deadline) from None
            raise

    def open(
        self,
        method: str,
        target: Target,
        addresses: list[IPAddress],
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        timeout: float | None = None,
    ) -> BaseHTTPResponse:
        """Send the request to the first address that accepts a connection; the response's
        body is left unread (read it with :meth:`read`, or drop it with :func:`discard`)."""
        try:
            path = parse_url(url).request_uri
        except LocationValueError as exc:
            raise FetchError(
                f"{url!r} is not a valid URL ({exc})", transient=False, url=url
            ) from None
        headers = {**headers, "Host": target.authority}
        wait = self.timeout if timeout is None else timeout
        failure: HTTPError | None = None
        for address in addresses:  # the next address only when connecting failed
            deadline = self._clock.deadline
            bounded = wait if deadline is None else deadline.bound(wait)
            try:
                return self._pool(target, address).urlopen(
                    method,
                    path,
                    body=body,
                    headers=headers,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    decode_content=True,
                    assert_same_host=False,
                    release_conn=False,
                    timeout=urllib3.Timeout(connect=bounded, read=bounded),
                )
            except (NewConnectionError, ConnectTimeoutError) as exc:
                failure = exc
            except (HTTPError, OSError) as exc:
                raise self.network_error(exc, url) from exc
        if failure is None:
            raise FetchError(f"no address to connect to for {url}", transient=True, url=url)
        raise self.network_error(failure, url) from failure

    def read(self, response: BaseHTTPResponse, url: str, limit: int) -> tuple[bytes, bool]:
        """Read the decompressed body, stopping as soon as it passes ``limit`` bytes.

        Returns the bytes read and whether the body was longer (then the connection is
        closed, not reused). Raises :class:`FetchError` for an encoding we cannot decode or a
        broken connection.
        """
        encoding = (response.headers.get("Content-Encoding") or "").strip().lower()
        unknown = [e for e in (p.strip() for p in encoding.split(",")) if e not in _DECODABLE]
        length = response.headers.get("Content-Length") or ""
        chunks: list[bytes] = []
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
                response.close()
                return b"", True
            total = 0
            for chunk in response.stream(CHUNK, decode_content=True):
                total += len(chunk)
                if total > limit:
                    chunks.append(chunk[: len(chunk) - (total - limit)])
                    response.close()
                    return b"".join(chunks), True
                chunks.append(chunk)
        except FetchError:
            response.close()
            raise
        except (HTTPError, OSError) as exc:
            response.close()
            raise self.network_error(exc, url) from exc
        finally:
            response.release_conn()
        return b"".join(chunks), False

    # ------------------------------------------------------------------ errors

    def too_slow(self, url: str, deadline: Deadline, status: int | None = None) -> FetchError:
        """The error of a request that passed its deadline."""
        host = urlsplit(url).hostname or url
        return FetchError(
            f"{host} sent its response too slowly: {self.names.doing} {url} took more than "
            f"{deadline.seconds:g} s ({self.names.total}); it will be retried",
            transient=True,
            url=url,
            status=status,
        )

    def network_error(self, exc: BaseException, url: str) -> FetchError:
        """A :class:`FetchError` with an actionable reason for a urllib3 or socket error."""
        deadline = self._clock.deadline
        if deadline is not None and deadline.expired():
            return self.too_slow(url, deadline)
        return network_error(exc, url, self.timeout, self.names.timeout)

    # ------------------------------------------------------------------ pools

    def _pool(self, target: Target, address: IPAddress) -> urllib3.HTTPConnectionPool:
        key = (target.scheme, address, target.port, target.host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            common: dict[str, Any] = {  # the pool keyword arguments, for both kinds
                "timeout": urllib3.Timeout(connect=self.timeout, read=self.timeout),
                "maxsize": self._pool_size,
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


def discard(response: BaseHTTPResponse) -> None:
    """Drop an unwanted body: read a small one (keeping the connection), else close."""
    try:
        if len(response.read(DISCARD_LIMIT + 1, decode_content=False)) > DISCARD_LIMIT:
            response.close()
    except (HTTPError, OSError):
        response.close()
    finally:
        response.release_conn()


def network_error(
    exc: BaseException, url: str, timeout: float, setting: str = "[fetch] timeout"
) -> FetchError:
    """A :class:`FetchError` with an actionable reason for a urllib3 or socket error."""
    host = urlsplit(url).hostname or url
    if isinstance(exc, NewConnectionError):
        cause = str(exc).rsplit(": ", 1)[-1]
        reason = f"could not connect to {host} ({cause}); the site may be down — it will be retried"
        transient = True
    elif isinstance(exc, ConnectTimeoutError):
        reason = (
            f"timed out connecting to {host} after {timeout:g} s ({setting}); it will be retried"
        )
        transient = True
    elif isinstance(exc, ReadTimeoutError | TimeoutError):
        reason = f"{host} sent nothing for {timeout:g} s ({setting}); it will be retried"
        transient = True
    elif isinstance(exc, SSLError | ssl.SSLError):
        reason = f"TLS error with {host}: {exc}; the site's certificate may be invalid or expired"
        transient = False
    elif isinstance(exc, DecodeError):
        reason, transient = f"{url} sent a corrupt compressed body ({exc})", False
    elif isinstance(exc, ProtocolError):
        reason, transient = f"the connection to {host} broke ({exc}); it will be retried", True
    else:
        reason, transient = f"network error with {host}: {exc}; it will be retried", True
    return FetchError(reason, transient=transient, url=url)
