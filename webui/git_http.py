"""``git clone http://HOST:PORT/archive.git``: git's smart HTTP protocol, read-only.

Requests are handed to ``git http-backend`` run as a CGI program (no shell), with both bodies
streamed: the client's request is piped in while it arrives (bounded in size), and the pack is
sent back as git writes it. Only fetching is served: ``git-receive-pack`` (push) is refused
with 403 before git runs, and ``http.receivepack`` is forced off as well. The versions
repository is served at ``/archive.git``; the raw snapshots repository at ``/snapshots.git``
only when ``[web] expose_snapshots = true``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from flask import Blueprint, Response, abort, request, url_for
from werkzeug.exceptions import HTTPException

from webui.context import web_state

log = logging.getLogger(__name__)

bp = Blueprint("git_http", __name__)

MAX_REQUEST_BYTES = 10 * 1024 * 1024
"""Largest upload-pack request (wants and haves) accepted; git's own default buffer size."""
CHUNK = 64 * 1024
FEED_JOIN_SECONDS = 10.0
REPOSITORIES = ("archive", "snapshots")
UPLOAD_PACK = "git-upload-pack"
READ_ONLY = "This archive is read-only: it can be cloned and fetched over HTTP, never pushed to.\n"


def repository_path(name: str) -> Path:
    """The work tree served as ``/<name>.git``, or a 404 when it is not served."""
    state = web_state()
    if name == "snapshots" and not state.config.web.expose_snapshots:
        abort(404, description="The snapshots repository is not served by this archive.")
    path = state.config.archive_dir if name == "archive" else state.config.snapshots_dir
    if not (path / ".git").is_dir():
        abort(404, description=f"The {name} repository does not exist yet.")
    return path


def refuse_push() -> Response:
    return Response(READ_ONLY, status=403, mimetype="text/plain")


# --------------------------------------------------------------------------- routes


@bp.get("/<any(archive, snapshots):name>.git")
@bp.get("/<any(archive, snapshots):name>.git/")
def about(name: str) -> Response:
    """A person opening the clone URL in a browser gets the command to run."""
    repository_path(name)
    url = url_for("git_http.about", name=name, _external=True).rstrip("/")
    return Response(
        f"This is a git repository. Clone it with:\n\n    git clone {url}\n", mimetype="text/plain"
    )


@bp.get("/<any(archive, snapshots):name>.git/info/refs")
def info_refs(name: str) -> Response:
    service = request.args.get("service", "")
    if service == "git-receive-pack":
        return refuse_push()
    if service != UPLOAD_PACK:
        abort(400, description="Only git's smart HTTP protocol is served: use git 1.6.6 or later.")
    return run_backend(repository_path(name), "/.git/info/refs")


@bp.post("/<any(archive, snapshots):name>.git/git-upload-pack")
def upload_pack(name: str) -> Response:
    path = repository_path(name)
    request.max_content_length = MAX_REQUEST_BYTES  # the app-wide cap is for forms
    length = request.content_length
    if length is not None and length > MAX_REQUEST_BYTES:
        abort(413, description=f"A fetch request may be at most {MAX_REQUEST_BYTES} bytes.")
    return run_backend(path, "/.git/git-upload-pack")


@bp.post("/<any(archive, snapshots):name>.git/git-receive-pack")
def receive_pack(name: str) -> Response:
    return refuse_push()


# --------------------------------------------------------------------------- CGI


def cgi_environ(root: Path, path_info: str) -> dict[str, str]:
    """The CGI variables ``git http-backend`` reads, and nothing else of ours."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        # Belt and braces: the route never runs receive-pack, and git would refuse it too.
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.receivepack",
        "GIT_CONFIG_VALUE_0": "false",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PATH_INFO": path_info,
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.query_string.decode("latin-1"),
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "REMOTE_ADDR": request.remote_addr or "",
        "SERVER_PROTOCOL": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
    }
    if request.content_length is not None:
        env["CONTENT_LENGTH"] = str(request.content_length)
    if request.headers.get("Content-Encoding"):
        env["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
    if request.headers.get("Git-Protocol"):
        env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
    return env


def _feed(source: IO[bytes], sink: IO[bytes], limit: int) -> None:
    """Copy the request body into git's stdin (in a thread), at most ``limit`` bytes."""
    sent = 0
    try:
        while chunk := source.read(CHUNK):
            sent += len(chunk)
            if sent > limit:
                log.warning("git fetch request over %d bytes: cut off", limit)
                break
            sink.write(chunk)
    except (OSError, HTTPException) as exc:  # git stopped reading, client gone, over the cap
        log.info("git request body not fully delivered: %s", exc)
    finally:
        with contextlib.suppress(BrokenPipeError):
            sink.close()


def _read_headers(stdout: IO[bytes]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Read the CGI header block; return (status, headers, body bytes already read)."""
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data:
        chunk = stdout.read1(CHUNK) if hasattr(stdout, "read1") else stdout.read(CHUNK)
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


def run_backend(root: Path, path_info: str) -> Response:
    """Run ``git http-backend`` for this request and stream its answer."""
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _finish
    has_body = request.method == "POST"
    proc = subprocess.Popen(
        ["git", "http-backend"],
        env=cgi_environ(root, path_info),
        stdin=subprocess.PIPE if has_body else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    feeder = None
    if has_body:
        assert proc.stdin is not None
        feeder = threading.Thread(
            target=_feed,
            args=(request.stream, proc.stdin, MAX_REQUEST_BYTES),
            name="git-http-feed",
            daemon=True,
        )
        feeder.start()
    assert proc.stdout is not None
    try:
        status, headers, first = _read_headers(proc.stdout)
    except OSError as exc:
        problem = _finish(proc, feeder, stderr, at_end=False)
        log.error("git http-backend failed for %s: %s %s", request.path, exc, problem)
        abort(502, description="git could not serve this repository; the operator has details.")
    body = _Body(proc, feeder, stderr, first)
    response = Response(body, status=status)
    for key, value in headers:
        if key.lower() == "content-type":
            response.headers["Content-Type"] = value
        else:
            response.headers[key] = value
    response.headers.setdefault("Content-Type", "application/octet-stream")
    return response


class _Body:
    """The response body: git's output, streamed; git is reaped when the server closes the
    body, even one never iterated (a HEAD request) or abandoned by the client."""

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
        while chunk := self._proc.stdout.read1(CHUNK):
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
