"""A real HTTP webhook receiver on 127.0.0.1 that records POSTs and answers as scripted.

Usage::

    def test_hook(webhook_receiver):
        webhook_receiver.script(503, 503)              # fail twice, then 204
        webhook_receiver.script((429, {"Retry-After": "1"}))
        webhook_receiver.delay = 2.0                   # answer 2 s after recording the call
        url = webhook_receiver.url("/hook")
        ...
        [call] = webhook_receiver.wait_for(1)
        assert call.verify(secret) and call.json()["type"] == "version.recorded"
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from archive.alerts.webhooks import verify

Answer = tuple[int, dict[str, str]]


@dataclass(frozen=True)
class Call:
    """One request the receiver got, and what it answered."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    time: float  # time.monotonic() on arrival
    answered: int

    def json(self) -> Any:
        return json.loads(self.body)

    def verify(self, secret: str, tolerance: float = 300) -> bool:
        return verify(secret, self.headers, self.body, tolerance=tolerance)


class WebhookReceiver:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._script: list[Answer] = []
        self.default: Answer = (204, {})
        self.delay = 0.0  # seconds to wait before answering (a slow receiver)
        self._cond = threading.Condition()
        self._stopping = threading.Event()  # ends every slow answer at once
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, headers = receiver._answer()
                with receiver._cond:  # recorded on arrival: a test can act while we dawdle
                    receiver.calls.append(
                        Call(
                            "POST",
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                            status,
                        )
                    )
                    receiver._cond.notify_all()
                if receiver.delay and receiver._stopping.wait(receiver.delay):
                    return  # the receiver stops: drop the connection unanswered
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _answer(self) -> Answer:
        with self._cond:
            return self._script.pop(0) if self._script else self.default

    def script(self, *answers: int | Answer) -> None:
        """Answers for the next requests (a status, or (status, headers)); then ``default``."""
        with self._cond:
            self._script += [(a, {}) if isinstance(a, int) else a for a in answers]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.calls) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} webhook call(s), got {len(self.calls)} in {timeout} s"
                    )
                self._cond.wait(left)
            return list(self.calls)

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture(name="webhook_receiver")
def webhook_receiver_fixture() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
