"""``git clone http://HOST:PORT/archive.git``: git's smart HTTP protocol, read-only.

The Flask side only: which repository a URL names, refusing pushes (403 before git runs),
the cap on a fetch request, and turning git's answer into a streamed response. Running
``git http-backend`` itself is :func:`store.http_backend.run`. The versions repository is
served at ``/archive.git``; the raw snapshots repository at ``/snapshots.git`` only when
``[web] expose_snapshots = true``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO

from flask import Blueprint, Response, abort, request, url_for
from werkzeug.exceptions import HTTPException

from store.git import http_backend
from webui.context import web_state

log = logging.getLogger(__name__)

bp = Blueprint("git_http", __name__)

MAX_REQUEST_BYTES = 10 * 1024 * 1024
"""Largest upload-pack request (wants and haves) accepted; git's own default buffer size."""
REPOSITORIES = ("archive", "snapshots")
UPLOAD_PACK = "git-upload-pack"
READ_ONLY = "This archive is read-only: it can be cloned and fetched over HTTP, never pushed to.\n"


def repository_path(name: str) -> Path:
    """The repository folder served as ``/<name>.git``, or a 404 when it is not served."""
    state = web_state()
    if name == "snapshots" and not state.config.web.expose_snapshots:
        abort(404, description="The snapshots repository is not served by this archive.")
    path = state.config.archive_dir if name == "archive" else state.config.snapshots_dir
    if not http_backend.is_repository(path):
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
    return run_backend(repository_path(name), "info/refs")


@bp.post("/<any(archive, snapshots):name>.git/git-upload-pack")
def upload_pack(name: str) -> Response:
    path = repository_path(name)
    request.max_content_length = MAX_REQUEST_BYTES  # the app-wide cap is for forms
    length = request.content_length
    if length is not None and length > MAX_REQUEST_BYTES:
        abort(413, description=f"A fetch request may be at most {MAX_REQUEST_BYTES} bytes.")
    return run_backend(path, "git-upload-pack")


@bp.post("/<any(archive, snapshots):name>.git/git-receive-pack")
def receive_pack(name: str) -> Response:
    return refuse_push()


# --------------------------------------------------------------------------- git


class _RequestBody:
    """The request stream as git's feeder reads it: werkzeug's errors while reading (the
    client left, the body is over its cap) become ``OSError``, which ends the feed."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def read(self, size: int, /) -> bytes:
        try:
            return self._stream.read(size)
        except HTTPException as exc:
            raise OSError(str(exc)) from None


def backend_request() -> http_backend.BackendRequest:
    """What ``git http-backend`` needs to know of the current request."""
    return http_backend.BackendRequest(
        method=request.method,
        query_string=request.query_string.decode("latin-1"),
        content_type=request.headers.get("Content-Type", ""),
        content_length=request.content_length,
        content_encoding=request.headers.get("Content-Encoding", ""),
        git_protocol=request.headers.get("Git-Protocol", ""),
        remote_addr=request.remote_addr or "",
        server_protocol=request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
    )


def run_backend(root: Path, service: str) -> Response:
    """Run ``git http-backend`` for this request and stream its answer."""
    body = _RequestBody(request.stream) if request.method == "POST" else None
    try:
        answer = http_backend.run(
            root, service, backend_request(), body, max_body=MAX_REQUEST_BYTES
        )
    except http_backend.BackendError as exc:
        log.error("git http-backend failed for %s: %s", request.path, exc)
        abort(502, description="git could not serve this repository; the operator has details.")
    response = Response(answer.body, status=answer.status)
    for key, value in answer.headers:
        if key.lower() == "content-type":
            response.headers["Content-Type"] = value
        else:
            response.headers[key] = value
    response.headers.setdefault("Content-Type", "application/octet-stream")
    return response
