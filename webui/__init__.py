"""The read-only web UI: a Flask app factory, one blueprint per page family.

``create_app(config)`` opens one reader :class:`~archive.app.Archive` for the app (or uses the
one passed in, e.g. by ``policy-archive run`` or a test) and closes what it opened when
:func:`close_app` is called or the app is garbage-collected. Security headers, request limits,
error pages, HTML-safe JSON, login sessions and the CSRF check (webui/auth.py) apply to every
blueprint, including those added later.
"""

from __future__ import annotations

import importlib
import weakref

from flask import Flask, abort, current_app, request

from archive.app import Archive
from archive.config import Config
from webui.auth import init_auth
from webui.context import EXTENSION, WebState
from webui.names import NameConverter
from webui.security import SafeJSONProvider, init_security

BLUEPRINTS = (
    "webui.errors",
    "webui.pages",
    "webui.search",
    "webui.policies",
    "webui.diff",
    "webui.changes",
    "webui.feeds",
    "webui.api",
    "webui.alerts",
    "webui.git_http",
    "webui.export",
    "webui.auth",
    "webui.admin.home",
    "webui.admin.users",
    "webui.admin.policies",
    "webui.admin.operator",
)
"""Modules whose ``bp`` blueprint is registered, in order."""

MAX_CONTENT_LENGTH = 1_000_000
"""Largest request body accepted (bytes); this UI reads, it takes no uploads."""

OWN_BODY_CAPS = frozenset({"git_http.upload_pack"})
"""Endpoints that stream a request body and enforce their own, larger cap (a git fetch)."""


def create_app(config: Config, *, archive: Archive | None = None) -> Flask:
    """Build the web UI for ``config``; use ``archive`` if given (the caller then closes it)."""
    app = Flask(__name__)
    app.json_provider_class = SafeJSONProvider
    app.json = SafeJSONProvider(app)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
        JSON_SORT_KEYS=False,
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.jinja_env.autoescape = True
    app.url_map.converters["name"] = NameConverter
    owned = archive is None
    if archive is None:
        archive = Archive.open(config)
    state = WebState(config=config, archive=archive, owns_archive=owned)
    app.extensions[EXTENSION] = state
    if owned:
        weakref.finalize(app, state.close)
    init_security(app)
    app.before_request(refuse_large_bodies)
    init_auth(app)  # after the size check: the CSRF check reads form bodies
    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).bp)
    return app


def refuse_large_bodies() -> None:
    """413 for a body over ``MAX_CONTENT_LENGTH``, whether or not the view would read it.

    Flask only enforces the cap when a view reads the body; this answers before any view runs.
    A chunked body without a length is capped as it is read (werkzeug's limited stream).
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length
    if length is None or length <= limit or request.endpoint in OWN_BODY_CAPS:
        return
    abort(413, description=f"A request body may be at most {limit:,} bytes; this has {length:,}.")


def close_app(app: Flask) -> None:
    """Close the archive the app opened itself (a no-op for an archive passed in)."""
    app.extensions[EXTENSION].close()


__all__ = ["BLUEPRINTS", "close_app", "create_app"]
