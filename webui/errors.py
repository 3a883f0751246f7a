"""Error pages: what was wrong, in words, as HTML or (under /api/) JSON; never a traceback.

The web's one error edge: domain errors that reach a view become their HTTP answer here (a bad
query a 400, a busy or damaged index a 503). Registered app-wide, so they also cover blueprints
added by other features.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.wrappers import Response

from archive.search import QueryError
from store.errors import StoreError, UnknownVersionError
from store.index import IndexBusyError, IndexDamagedError

log = logging.getLogger(__name__)

bp = Blueprint("errors", __name__)


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


def error_response(status: int, title: str, message: str) -> tuple[Response | str, int]:
    if wants_json():
        return jsonify({"error": {"status": status, "title": title, "message": message}}), status
    return render_template("error.html", status=status, title=title, message=message), status


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[Response | str, int]:
    status = exc.code or 500
    message = exc.description or ""
    if isinstance(exc, NotFound) and message == NotFound.description:
        message = f"Nothing here: {request.path[:200]} is not a page of this archive."
    return error_response(status, exc.name, message)


@bp.app_errorhandler(UnknownVersionError)
def unknown_version(exc: UnknownVersionError) -> tuple[Response | str, int]:
    return error_response(404, "Not Found", str(exc))


@bp.app_errorhandler(QueryError)
def bad_query(exc: QueryError) -> tuple[Response | str, int]:
    """A query (or phrase) that cannot be read or is too broad: its message says what to fix."""
    return error_response(400, "Bad Request", f"The query could not be read: {exc}")


@bp.app_errorhandler(IndexBusyError)
def index_busy(exc: IndexBusyError) -> tuple[Response | str, int, dict[str, str]]:
    body, status = error_response(
        503, "Service Unavailable", f"The server is too busy to answer: {exc}."
    )
    return body, status, {"Retry-After": str(exc.retry_after)}


@bp.app_errorhandler(IndexDamagedError)
def index_damaged(exc: IndexDamagedError) -> tuple[Response | str, int]:
    log.error("%s", exc)
    return error_response(
        503,
        "Service Unavailable",
        "The search index is damaged; searches work again once the operator has rebuilt it "
        "(`policy-archive reindex`).",
    )


@bp.app_errorhandler(StoreError)
def store_error(exc: StoreError) -> tuple[Response | str, int]:
    log.error("archive error on %s: %s", request.path, exc)
    return error_response(
        500, "Archive Error", "The archive could not be read; the operator has the details."
    )


@bp.app_errorhandler(Exception)
def unexpected(exc: Exception) -> tuple[Response | str, int]:
    """A bug: logged with its traceback for the operator, a plain 500 for the user."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "Internal Server Error", "Something went wrong on our side.")
