"""One total deadline per fetch, enforced on every socket read.

``[fetch] timeout`` bounds each wait for the next bytes; a server that trickles one byte just
inside it would otherwise hold a fetch for ever. A :class:`Deadline` bounds the whole fetch (DNS,
connect, headers, every redirect hop, the body): each socket read waits at most
``min(timeout, time left)``, and a read after the deadline fails at once.

The HTTP client makes every connection read its response through :class:`DeadlineResponse`,
which looks up the deadline of the fetch running in the current thread (a :class:`FetchClock`
per client: a connection is used by one thread at a time, and a fetch runs in one thread).
"""

from __future__ import annotations

import http.client
import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from archive.errors import FetchError


class Deadline:
    """A point in time (``time.monotonic``) by which a fetch must be done."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self._end - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def bound(self, timeout: float | None) -> float:
        """``timeout`` shortened to the time left (never below a millisecond)."""
        left = max(0.001, self.remaining())
        return left if timeout is None else min(timeout, left)

    def extend(self, seconds: float) -> None:
        """Move the deadline later: time spent waiting for our own throttle is not the
        server's."""
        self._end += max(0.0, seconds)


def too_slow(url: str, deadline: Deadline, status: int | None = None) -> FetchError:
    """The error of a fetch that passed its deadline."""
    host = urlsplit(url).hostname or url
    return FetchError(
        f"{host} sent its response too slowly: fetching {url} took more than "
        f"{deadline.seconds:g} s ([fetch] max_fetch_seconds); it will be retried",
        transient=True,
        url=url,
        status=status,
    )


class FetchClock(threading.local):
    """The deadline of the fetch running in the current thread, if any."""

    deadline: Deadline | None = None

    @contextmanager
    def running(self, deadline: Deadline) -> Iterator[Deadline]:
        previous, self.deadline = self.deadline, deadline
        try:
            yield deadline
        finally:
            self.deadline = previous


def resolve_within(
    resolver: Callable[[str, int], Any], deadline: Deadline, url: str
) -> Callable[[str, int], Any]:
    """``resolver`` bounded by ``deadline``: the system resolver cannot be interrupted, so
    it runs in a daemon thread that is left behind if the deadline passes first."""

    def resolve(host: str, port: int) -> Any:
        future: Future[Any] = Future()

        def run() -> None:
            try:
                future.set_result(resolver(host, port))
            except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller's thread
                future.set_exception(exc)

        threading.Thread(target=run, name=f"resolve-{host}", daemon=True).start()
        try:
            return future.result(timeout=max(0.0, deadline.remaining()))
        except FutureTimeout:
            raise too_slow(url, deadline) from None

    return resolve


class _DeadlineReader(io.RawIOBase):
    """A socket's raw reader whose every read waits at most ``min(timeout, time left)``."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        super().__init__()
        self._raw = sock.makefile("rb", buffering=0)  # counts as one of the socket's readers
        self._sock = sock
        self._deadline = deadline
        self._timeout = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int | None:
        if self._deadline.expired():
            raise TimeoutError("the fetch deadline has passed")
        self._sock.settimeout(self._deadline.bound(self._timeout))
        return self._raw.readinto(b)

    def close(self) -> None:
        self._raw.close()
        super().close()


class DeadlineResponse(http.client.HTTPResponse):
    """An ``http.client`` response that reads the status line, headers and body through a
    deadline-bounded reader (when the current thread's fetch has a deadline)."""

    def __init__(self, sock: socket.socket, *args: Any, clock: FetchClock, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        deadline = clock.deadline
        if deadline is not None:
            self.fp.close()  # the plain reader made by makefile(); nothing was read from it
            self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))


class _ClockMixin:
    response_class: Any

    def _use_clock(self, clock: FetchClock) -> None:
        def response(sock: socket.socket, *args: Any, **kwargs: Any) -> DeadlineResponse:
            return DeadlineResponse(sock, *args, clock=clock, **kwargs)

        self.response_class = response


class DeadlineHTTPConnection(_ClockMixin, HTTPConnection):
    def __init__(self, *args: Any, clock: FetchClock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._use_clock(clock)


class DeadlineHTTPSConnection(_ClockMixin, HTTPSConnection):
    def __init__(self, *args: Any, clock: FetchClock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._use_clock(clock)


class DeadlineHTTPPool(HTTPConnectionPool):
    """A pool of connections that honour the fetch deadline (pass ``clock=`` to build it)."""

    ConnectionCls = DeadlineHTTPConnection


class DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = DeadlineHTTPSConnection
