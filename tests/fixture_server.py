"""A real, threaded HTTP/1.1 server on 127.0.0.1 for tests: scripted pages, redirects, failures.

Usage::

    def test_something(fixture_server):
        url = fixture_server.set("/privacy", "<h1>Privacy</h1>", etag='"v1"')
        fixture_server.redirect("/old", "/privacy")
        fixture_server.fail("/privacy", times=2, status=503)   # then serves the page
        fixture_server.trickle("/slow", "<h1>Privacy</h1>", interval=1.0, part="headers")
        ...
        assert fixture_server.hits("/privacy") == 3
        assert fixture_server.requests[-1].header("User-Agent").startswith("PolicyArchive")

Routes match the request path exactly (the query string is ignored unless a route was set
for the path with its query). Unknown paths answer 404. A route with ``etag`` or
``last_modified`` answers 304 to a matching If-None-Match / If-Modified-Since.
``stop()`` then ``start()`` simulates the site going down and coming back on the same port.
The ``fixture_server`` pytest fixture gives a started server, stopped after the test.
"""

from __future__ import annotations

import gzip as gzip_module
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urljoin, urlsplit

import pytest

Handler = Callable[[BaseHTTPRequestHandler], None]
"""A custom route: writes the whole response itself (``send_response``, ``wfile``...)."""


@dataclass
class Page:
    """What the server answers on one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    etag: str | None = None
    last_modified: str | None = None
    handler: Handler | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str  # with the query string
    headers: dict[str, str]
    time: float  # time.monotonic() when the request line and headers had arrived
    client_port: int

    def header(self, name: str) -> str | None:
        """A request header, case-insensitively."""
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


class FixtureServer:
    """A threaded HTTP/1.1 server on ``host`` (default 127.0.0.1) and an ephemeral port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._pages: dict[str, Page] = {}
        self._failures: dict[str, list[tuple[int, bytes, dict[str, str]]]] = {}
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self.max_in_flight = 0
        """The most requests that were being answered at the same time."""
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> FixtureServer:
        """Listen (again) on ``host`` and ``port`` (the same port after a ``stop()``)."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _RequestHandler, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.05,),
            name=f"fixture-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, cut open connections and wait for the handler threads."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.cut_connections()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FixtureServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- scripting

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return urljoin(self.base_url + "/", path)

    def set(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = "text/html; charset=utf-8",
        delay: float = 0.0,
        etag: str | None = None,
        last_modified: str | None = None,
        gzip: bool = False,
    ) -> str:
        """Serve ``body`` on ``path``; return its URL.

        ``str`` bodies are sent as UTF-8. ``delay`` seconds pass before the answer starts.
        ``gzip=True`` sends the body gzip-compressed (``Content-Encoding: gzip``); to send
        bytes that are already compressed (a gzip bomb), pass them with
        ``headers={"Content-Encoding": "gzip"}``. ``content_type=None`` sends no Content-Type.
        """
        raw = body.encode("utf-8") if isinstance(body, str) else body
        all_headers = dict(headers or {})
        if content_type is not None:
            all_headers.setdefault("Content-Type", content_type)
        if gzip:
            raw = gzip_module.compress(raw)
            all_headers["Content-Encoding"] = "gzip"
        if etag is not None:
            all_headers["ETag"] = etag
        if last_modified is not None:
            all_headers["Last-Modified"] = last_modified
        page = Page(
            body=raw,
            status=status,
            headers=all_headers,
            delay=delay,
            etag=etag,
            last_modified=last_modified,
        )
        with self._cond:
            self._pages[path] = page
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        """Redirect ``path`` to ``to`` (a path or an absolute URL); return ``path``'s URL."""
        return self.set(path, status=status, headers={"Location": to}, content_type=None)

    def handle(self, path: str, handler: Handler) -> str:
        """Answer ``path`` with ``handler(request_handler)``, for anything ``set`` cannot do."""
        with self._cond:
            self._pages[path] = Page(handler=handler)
        return self.url(path)

    def trickle(
        self,
        path: str,
        body: bytes | str,
        *,
        interval: float,
        part: str = "body",
        content_type: str = "text/html; charset=utf-8",
    ) -> str:
        """Serve ``body`` on ``path`` one byte every ``interval`` seconds; return its URL.

        ``part="headers"`` trickles the status line and headers (then the body), ``"body"``
        sends the headers at once and trickles the body. Each byte comes well within a read
        timeout, so only a total deadline ends the fetch. The server stops trickling when the
        client hangs up or the server stops.
        """
        if part not in ("headers", "body"):
            raise ValueError(f"part must be 'headers' or 'body', not {part!r}")
        raw = body.encode("utf-8") if isinstance(body, str) else body
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(raw)}\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        slow, fast = (head + raw, b"") if part == "headers" else (raw, head)

        def handler(request: BaseHTTPRequestHandler) -> None:
            request.close_connection = True
            try:
                request.wfile.write(fast)
                for byte in slow:
                    if self._stopping.is_set():
                        return
                    request.wfile.write(bytes([byte]))
                    self._pause(interval)
            except OSError:
                return  # the client gave up, as it should

        return self.handle(path, handler)

    def fail(
        self,
        path: str,
        times: int = 1,
        status: int = 500,
        *,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests to ``path`` with ``status`` (then as set).

        ``status=0`` closes the connection without answering.
        """
        raw = body.encode("utf-8") if isinstance(body, str) else body
        with self._cond:
            self._failures.setdefault(path, []).extend([(status, raw, dict(headers or {}))] * times)

    # ---------------------------------------------------------------- observing

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order of arrival."""
        with self._cond:
            return list(self._requests)

    def hits(self, path: str) -> int:
        """How many requests reached ``path`` (query strings ignored)."""
        with self._cond:
            return sum(1 for r in self._requests if urlsplit(r.path).path == path)

    def wait_for_hits(self, path: str, count: int, timeout: float = 10.0) -> None:
        """Wait until ``path`` has had ``count`` requests; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.hits(path) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{path} had {self.hits(path)} requests, not {count}")
                self._cond.wait(left)

    # ---------------------------------------------------------------- used by the handler

    def _record(self, request: RecordedRequest) -> None:
        with self._cond:
            self._requests.append(request)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self._cond.notify_all()

    def _done(self) -> None:
        with self._cond:
            self._in_flight -= 1

    def _lookup(self, path: str) -> tuple[Page | None, tuple[int, bytes, dict[str, str]] | None]:
        with self._cond:
            key = path if path in self._pages or path in self._failures else urlsplit(path).path
            failures = self._failures.get(key)
            failure = failures.pop(0) if failures else None
            return self._pages.get(key), failure

    def _pause(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(
        self, address: tuple[str, int], handler: type[_RequestHandler], fixture: FixtureServer
    ) -> None:
        self.fixture = fixture
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__(address, handler)

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:
        with self._lock:
            self._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._connections.discard(request)

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet about clients that hang up (tests do that on purpose); loud otherwise."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def cut_connections(self) -> None:
        with self._lock:
            for sock in self._connections:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    continue


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read ``FixtureServer.requests`` instead."""

    def do_GET(self) -> None:
        fixture = self.server.fixture
        fixture._record(
            RecordedRequest(
                self.command,
                self.path,
                dict(self.headers.items()),
                time.monotonic(),
                self.client_address[1],
            )
        )
        try:
            self._answer(fixture)
        finally:
            fixture._done()

    do_HEAD = do_GET
    do_POST = do_GET

    def _answer(self, fixture: FixtureServer) -> None:
        page, failure = fixture._lookup(self.path)
        if failure is not None:
            status, body, headers = failure
            if status == 0:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._send(status, body, headers)
            return
        if page is None:
            self._send(404, b"<h1>Not found</h1>", {"Content-Type": "text/html"})
            return
        if page.delay:
            fixture._pause(page.delay)
        if page.handler is not None:
            page.handler(self)
            return
        if self._not_modified(page):
            kept = {k: v for k, v in page.headers.items() if k in ("ETag", "Last-Modified")}
            self._send(304, b"", kept)
            return
        self._send(page.status, page.body, page.headers)

    def _not_modified(self, page: Page) -> bool:
        if page.etag is not None and (match := self.headers.get("If-None-Match")):
            return match.strip() == "*" or page.etag in [t.strip() for t in match.split(",")]
        since = self.headers.get("If-Modified-Since")
        if page.last_modified is None or not since:
            return False
        try:
            return parsedate_to_datetime(page.last_modified) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return since == page.last_modified

    def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status != 304:
            self.wfile.write(body)


@pytest.fixture
def fixture_server() -> Iterator[FixtureServer]:
    """A started :class:`FixtureServer` on 127.0.0.1, stopped after the test."""
    with FixtureServer() as server:
        yield server
