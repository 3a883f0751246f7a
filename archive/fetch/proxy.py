"""A forward proxy on 127.0.0.1 that applies the SSRF guard to everything the browser sends.

``page.route`` sees a request before Chromium sends it, but not the hops of a redirect, and
Chromium does its own DNS lookups. So the browser is started with this proxy: each CONNECT
(https, wss) or absolute-URI request (http) is checked by the guard, and the proxy connects to
the validated address itself; no other DNS answer is ever used. A refused request gets a
403 answer with the :data:`BLOCKED_HEADER` header and is noted (:meth:`refusals_since`).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import socketserver
import threading
from collections import deque
from urllib.parse import urlsplit

from archive.errors import FetchError
from archive.fetch.guard import (
    AddressPolicy,
    BlockedAddressError,
    IPAddress,
    Resolver,
    check_host_allowed,
    resolve,
)

BLOCKED_HEADER = "X-Policy-Archive-Blocked"
MAX_HEAD = 64 * 1024
BUFFER = 64 * 1024
_HOP_HEADERS = {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}


class GuardProxy:
    """The browser's proxy. ``start()`` gives its URL; ``stop()`` closes every tunnel."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        timeout: float,
        idle_timeout: float,
        resolver: Resolver = resolve,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.refused = 0
        """How many requests were refused so far."""
        self._refusals: deque[str] = deque(maxlen=100)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> str:
        """Listen on an ephemeral port of 127.0.0.1; return the proxy URL."""
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="fetch-guard-proxy", daemon=True
        )
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        """Stop accepting, cut open tunnels, and wait for the handler threads."""
        if self._server is None:
            return
        self._server.shutdown()
        with self._lock:
            for sock in self._sockets:
                _shutdown(sock)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def refuse(self, reason: str) -> None:
        """Note a refused request."""
        with self._lock:
            self.refused += 1
            self._refusals.append(reason)

    def refusals_since(self, count: int) -> list[str]:
        """Reasons of the requests refused since ``refused`` was ``count`` (newest last)."""
        with self._lock:
            recent = list(self._refusals)
            return recent[len(recent) - min(len(recent), self.refused - count) :]

    def track(self, sock: socket.socket, add: bool) -> None:
        """Remember (or forget) a socket to cut on ``stop()``."""
        with self._lock:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], proxy: GuardProxy
    ) -> None:
        self.proxy = proxy
        super().__init__(address, handler)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        proxy = self.server.proxy
        client: socket.socket = self.request
        client.settimeout(proxy.timeout)
        proxy.track(client, True)
        upstream: socket.socket | None = None
        try:
            head, rest = _read_head(client)
            if head is None:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = [*lines[0].split(" "), "", "", ""][:3]
            host, port, path = _destination(method, target)
            if host is None:
                client.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                return
            try:
                addresses = check_host_allowed(
                    host, port, policy=proxy.policy, resolver=proxy.resolver
                )
            except BlockedAddressError as exc:
                proxy.refuse(exc.reason)
                _refuse(client, exc.reason)
                return
            except FetchError:  # DNS failure: the browser reports it like any unreachable site
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n")
                return
            upstream = _connect(addresses, port, proxy.timeout)
            if upstream is None:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n")
                return
            proxy.track(upstream, True)
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            else:
                kept = [
                    ln
                    for ln in lines[1:]
                    if ln and ln.split(":", 1)[0].strip().lower() not in _HOP_HEADERS
                ]
                request = "\r\n".join(
                    [f"{method} {path} {version}", *kept, "Connection: close", "", ""]
                )
                upstream.sendall(request.encode("latin-1"))
            if rest:
                upstream.sendall(rest)
            _pipe(client, upstream, proxy.idle_timeout)
        except OSError:
            pass  # the browser or the site hung up: nothing to report to anyone
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    proxy.track(sock, False)
            if upstream is not None:
                upstream.close()


def _read_head(sock: socket.socket) -> tuple[bytes | None, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD:
            return None, b""
        chunk = sock.recv(BUFFER)
        if not chunk:
            return None, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _destination(method: str, target: str) -> tuple[str | None, int, str]:
    """(host, port, origin-form path) of a proxy request; host None if unusable."""
    try:
        if method == "CONNECT":
            parts = urlsplit(f"//{target}")
            return parts.hostname, parts.port or 443, ""
        parts = urlsplit(target)
        if parts.scheme != "http":
            return None, 0, ""
        path = parts.path or "/"
        return parts.hostname, parts.port or 80, f"{path}?{parts.query}" if parts.query else path
    except ValueError:
        return None, 0, ""


def _refuse(client: socket.socket, reason: str) -> None:
    body = reason.encode("utf-8")
    client.sendall(
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n"
        + f"{BLOCKED_HEADER}: 1\r\nContent-Length: {len(body)}\r\n".encode("ascii")
        + b"Connection: close\r\n\r\n"
        + body
    )


def _connect(addresses: list[IPAddress], port: int, timeout: float) -> socket.socket | None:
    for address in addresses:
        try:
            return socket.create_connection((str(address), port), timeout=timeout)
        except OSError:
            continue
    return None


def _pipe(a: socket.socket, b: socket.socket, idle_timeout: float) -> None:
    """Copy bytes both ways until one side closes or nothing moves for ``idle_timeout``."""
    peer = {a: b, b: a}
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ)
        selector.register(b, selectors.EVENT_READ)
        while True:
            events = selector.select(idle_timeout)
            if not events:
                return
            for key, _ in events:
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                data = sock.recv(BUFFER)
                if not data:
                    return
                peer[sock].sendall(data)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)
