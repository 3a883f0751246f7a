"""The production server (waitress) and ``policy-archive serve``, on real loopback sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import Config
from tests.support import serving
from tests.test_web import POLICIES, WO_URL, record_history
from webui import create_app
from webui.server import WebServer, make_server

REPO = Path(__file__).resolve().parents[1]
CLI = (sys.executable, "-c", "from archive.cli import main; main()")


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def fetch(url: str, timeout: float = 10.0) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read().decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(make_config: Callable[..., Config]) -> Iterator[WebServer]:
    config = make_config(policies=POLICIES)
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_history(archive)
        app = create_app(config, archive=archive)
        with serving(app, threads=2, connection_limit=200) as server:
            yield server


def test_pages_are_served_with_security_headers(served: WebServer) -> None:
    status, headers, body = fetch(served.url + WO_URL.lstrip("/"))
    assert status == 200 and "WorkOptima" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["Server"] == "policy-archive"
    status, _, body = fetch(served.url + "api/policies/Nobody/X/versions")
    assert status == 404 and '"status":404' in body


def test_slow_clients_do_not_block_the_server(served: WebServer) -> None:
    """Fifty clients that never finish their headers; two worker threads still answer."""
    slow = []
    try:
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", served.port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            slow.append(sock)
        started = time.monotonic()
        for _ in range(5):
            status, _, _ = fetch(served.url, timeout=5)
            assert status == 200
        assert time.monotonic() - started < 5
    finally:
        for sock in slow:
            sock.close()


def test_close_stops_the_server(make_config: Callable[..., Config]) -> None:
    config = make_config()
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        server = make_server(create_app(config, archive=archive), "127.0.0.1", 0)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        assert fetch(server.url)[0] == 200
        server.close()
        thread.join(10)
        assert not thread.is_alive()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_serve_command_serves_until_interrupted(make_config: Callable[..., Config],
                                                tmp_path: Path) -> None:  # fmt: skip
    config = make_config(policies=POLICIES)
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_history(archive)
    config_file = tmp_path / "config.toml"
    config_file.write_text(f'data_dir = "{config.data_dir}"\n' + "".join(
        f'[[policy]]\nservice = "{p["service"]}"\ntype = "{p["type"]}"\nurl = "{p["url"]}"\n'
        for p in POLICIES
    ))  # fmt: skip
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_ARCHIVE_")}
    proc = subprocess.Popen(
        [*CLI, "--config", str(config_file), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"

        def up() -> bool:
            try:
                return fetch(url, timeout=2)[0] == 200
            except OSError:
                assert proc.poll() is None, proc.communicate()
                return False

        wait_for(up)
        assert "WorkOptima" in fetch(url + "policies")[2]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert f"at http://127.0.0.1:{port}/" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
