"""The production WSGI server: waitress, with limits that survive slow and greedy clients.

``make_server`` binds at once (port 0 picks a free port: see ``port``) and returns a
:class:`WebServer` to ``run()`` in a thread and ``close()`` from another. Waitress buffers
requests and responses in its I/O thread, so slow clients hold a connection, not a worker
thread; ``connection_limit`` bounds how many such connections it keeps.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

MAX_HEADER_BYTES = 65_536
MAX_BODY_BYTES = 10_000_000
CHANNEL_TIMEOUT = 30
"""Seconds an idle or stalled connection is kept."""
LOOP_TIMEOUT = 0.25
"""Seconds between two checks of the stop flag by the I/O loop."""


class WebServer:
    """A waitress server that can be run in one thread and closed from another.

    It owns its socket map (waitress's default is one map per process, shared by every server
    in it), and it serves every address the host resolves to (``localhost``: 127.0.0.1 and ::1).
    """

    def __init__(self, server: BaseWSGIServer | MultiSocketServer, sockets: dict[int, Any]) -> None:
        self.server = server
        self._sockets = sockets
        self._listeners = [d for d in sockets.values() if isinstance(d, BaseWSGIServer)]
        self._address = self._listeners[0].getsockname()  # numeric (host, port), kept after close
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._running = False
        self._closed = False
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return self._address[0]

    @property
    def port(self) -> int:
        return int(self._address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def run(self) -> None:
        """Serve until :meth:`close` is called (blocks)."""
        self._running = True
        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=LOOP_TIMEOUT, map=self._sockets, use_poll=True, count=1)
        finally:
            self._shutdown()
            self._running = False
            self._stopped.set()

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish the requests in flight, close every connection (idempotent)."""
        self._stop.set()
        with self._lock:
            wake = self._running and not self._closed
            if wake:
                self._listeners[0].pull_trigger()  # wakes the loop of every listener
        if wake:
            self._stopped.wait(timeout)
        else:
            self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.server.task_dispatcher.shutdown()
            for channel in list(self._sockets.values()):
                channel.close()


def make_server(
    app: Flask, host: str, port: int, *, threads: int = 8, connection_limit: int = 1000
) -> WebServer:
    """A waitress server for ``app`` bound to ``host``:``port`` (0 for any free port)."""
    sockets: dict[int, Any] = {}
    try:
        server = create_server(
            app,
            map=sockets,
            host=host,
            port=port,
            threads=threads,
            connection_limit=connection_limit,
            channel_timeout=CHANNEL_TIMEOUT,
            cleanup_interval=CHANNEL_TIMEOUT,
            max_request_header_size=MAX_HEADER_BYTES,
            max_request_body_size=MAX_BODY_BYTES,
            asyncore_use_poll=True,
            ident="policy-archive",
            clear_untrusted_proxy_headers=True,
        )
    except OSError:  # a busy port: waitress leaves its trigger pipe open
        for channel in list(sockets.values()):
            channel.close()
        raise
    return WebServer(server, sockets)
