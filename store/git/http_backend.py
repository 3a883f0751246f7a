"""Serving one of our repositories over git's smart HTTP protocol, read-only.

:func:`run` hands one request to ``git http-backend`` run as a CGI program (no shell), with
both bodies streamed: the request body is piped in by a thread while it arrives (cut off past
a size cap), and git's answer is read back as it writes it. Only fetching is served: the
services are ``info/refs`` and ``git-upload-pack``, and ``http.receivepack`` is forced off.
The web layer (:mod:`webui.git_http`) maps URLs to repositories, refuses pushes and turns
:class:`Answer` into its response.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from store.errors import StoreError
from store.git.repository import is_repository

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
FEED_JOIN_SECONDS = 10.0
SERVICES = ("info/refs", "git-upload-pack")
"""What may be asked of a repository: the ref advertisement and fetching (never a push)."""

__all__ = [
    "SERVICES",
    "Answer",
    "BackendError",
    "BackendRequest",
    "Body",
    "Reader",
    "cgi_environ",
    "is_repository",
    "run",
]


class BackendError(StoreError):
    """``git http-backend`` did not answer (it ended, or sent a bad header block)."""


class Reader(Protocol):
    """Where a request body comes from; ``OSError`` means the client's body stopped."""

    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class BackendRequest:
    """The parts of an HTTP request that ``git http-backend`` reads."""

    method: str
    query_string: str = ""
    content_type: str = ""
    content_length: int | None = None
    content_encoding: str = ""
    git_protocol: str = ""
    remote_addr: str = ""
    server_protocol: str = "HTTP/1.1"


@dataclass
class Answer:
    """git's answer: its status and headers, and the body as a stream to iterate and close."""

    status: int
    headers: list[tuple[str, str]]
    body: Body


def cgi_environ(folder: Path, service: str, request: BackendRequest) -> dict[str, str]:
    """The CGI variables ``git http-backend`` reads for ``service`` of the repository in
    ``folder``, and nothing else of ours."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "GIT_PROJECT_ROOT": str(folder),
        "GIT_HTTP_EXPORT_ALL": "1",
        # Belt and braces: only fetch services are run, and git would refuse a push too.
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.receivepack",
        "GIT_CONFIG_VALUE_0": "false",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PATH_INFO": "/.git/" + service,
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.query_string,
        "CONTENT_TYPE": request.content_type,
        "REMOTE_ADDR": request.remote_addr,
        "SERVER_PROTOCOL": request.server_protocol,
    }
    if request.content_length is not None:
        env["CONTENT_LENGTH"] = str(request.content_length)
    if request.content_encoding:
        env["HTTP_CONTENT_ENCODING"] = request.content_encoding
    if request.git_protocol:
        env["GIT_PROTOCOL"] = request.git_protocol
    return env


def run(
    folder: Path,
    service: str,
    request: BackendRequest,
    body: Reader | None = None,
    *,
    max_body: int,
) -> Answer:
    """Run ``git http-backend`` for ``service`` of the repository in ``folder``.

    ``body`` (a POST's) is fed to git by a thread, at most ``max_body`` bytes. Returns once
    git has sent its headers; the caller iterates :attr:`Answer.body` and must close it
    (git is reaped then, even if the body was never read). Raises :class:`BackendError`
    when git ends without answering.
    """
    if service not in SERVICES:
        raise StoreError(f"{service!r} is not served (only {', '.join(SERVICES)})")
    if not is_repository(folder):
        raise StoreError(f"{folder} holds no repository")
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _finish
    proc = subprocess.Popen(
        ["git", "http-backend"],
        env=cgi_environ(folder, service, request),
        stdin=subprocess.PIPE if body is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    feeder = None
    if body is not None:
        assert proc.stdin is not None
        feeder = threading.Thread(
            target=_feed,
            args=(body, proc.stdin, max_body),
            name="git-http-feed",
            daemon=True,
        )
        feeder.start()
    assert proc.stdout is not None
    try:
        status, headers, first = _read_headers(proc.stdout)
    except OSError as exc:
        problem = _finish(proc, feeder, stderr, at_end=False)
        raise BackendError(f"{exc} {problem}".strip()) from None
    return Answer(status, headers, Body(proc, feeder, stderr, first))


def _feed(source: Reader, sink: IO[bytes], limit: int) -> None:
    """Copy the request body into git's stdin (in a thread), at most ``limit`` bytes."""
    sent = 0
    try:
        while chunk := source.read(CHUNK):
            sent += len(chunk)
            if sent > limit:
                log.warning("git fetch request over %d bytes: cut off", limit)
                break
            sink.write(chunk)
    except OSError as exc:  # git stopped reading, the client left, the body is over its cap
        log.info("git request body not fully delivered: %s", exc)
    finally:
        with contextlib.suppress(BrokenPipeError):
            sink.close()


def _read_some(stream: IO[bytes]) -> bytes:
    """What git has written so far, up to :data:`CHUNK` bytes (b"" at its end): one read,
    without waiting for a full chunk."""
    read1 = getattr(stream, "read1", None)
    return read1(CHUNK) if read1 is not None else stream.read(CHUNK)


def _read_headers(stdout: IO[bytes]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Read the CGI header block; return (status, headers, body bytes already read)."""
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data:
        chunk = _read_some(stdout)
        if not chunk:
            raise OSError("git http-backend ended before sending its headers")
        data += chunk
        if len(data) > CHUNK:
            raise OSError("git http-backend sent an oversized header block")
    crlf, lf = data.find(b"\r\n\r\n"), data.find(b"\n\n")
    end, sep_len = (crlf, 4) if crlf != -1 and (lf == -1 or crlf < lf) else (lf, 2)
    status, headers = 200, []
    for line in data[:end].decode("latin-1").splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key.lower() == "status":
            status = int(value.split()[0])
        elif key:
            headers.append((key, value))
    return status, headers, data[end + sep_len :]


class Body:
    """git's output, streamed; git is reaped when the body is closed, even one never
    iterated (a HEAD request) or abandoned by the client."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        feeder: threading.Thread | None,
        stderr: IO[bytes],
        first: bytes,
    ) -> None:
        self._proc, self._feeder, self._stderr, self._first = proc, feeder, stderr, first
        self._at_end = False
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        assert self._proc.stdout is not None
        if self._first:
            yield self._first
        while chunk := _read_some(self._proc.stdout):
            yield chunk
        self._at_end = True
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        problem = _finish(self._proc, self._feeder, self._stderr, at_end=self._at_end)
        if problem:
            log.warning("git http-backend: %s", problem)


def _finish(
    proc: subprocess.Popen[bytes],
    feeder: threading.Thread | None,
    stderr: IO[bytes],
    *,
    at_end: bool,
) -> str:
    """Reap git, stopping it first if its output was not read to the end (the client left,
    or the headers were bad); close every pipe. Returns what git wrote on stderr."""
    assert proc.stdout is not None
    proc.stdout.close()
    if not at_end and proc.poll() is None:
        proc.kill()  # nobody reads its output any more: git would block on a full pipe
    proc.wait()
    if feeder is not None:
        feeder.join(timeout=FEED_JOIN_SECONDS)
    stderr.seek(0)
    problem = stderr.read().decode("utf-8", "replace").strip()
    stderr.close()
    return problem
