"""Logging in and out, who is asking, and what protects every mutating request.

- Sessions are server-side (archive.accounts.sessions): Flask's signed cookie carries only the
  random session id (``sid``), HttpOnly, SameSite=Lax, Secure over https; the row in
  state.sqlite holds the user and the expiry, and logging out deletes it.
- Scripts send ``Authorization: Bearer <token>`` (``policy-archive token create``); git, when
  the site is private, may send a token as the Basic-auth password.
- CSRF: every POST/PUT/PATCH/DELETE must carry the session's token (form field ``csrf_token``
  or header ``X-CSRF-Token``), else 400; the token is an HMAC of the session id (of a random
  nonce before login), so it changes at login. Exempt: requests authenticated by a Bearer token
  (browsers never add that header on their own) and the endpoints that carry their own
  authority (git's upload-pack, the signed alert links).
- ``[web] private``: every page but the login, static files and alert links needs a login.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response

from archive.accounts import audit as audit_log
from archive.accounts.errors import LoginRefusedError
from archive.accounts.login import authenticate
from archive.accounts.roles import check_role
from archive.accounts.sessions import Sessions
from archive.accounts.tokens import ApiTokens
from archive.accounts.users import User
from archive.alerts.tokens import secret_key
from archive.errors import StoreError
from webui.admin import nav_for
from webui.context import EXTENSION, web_state

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

COOKIE = "pa_session"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_EXEMPT = frozenset(
    {"git_http.upload_pack", "git_http.receive_pack", "alerts.unsubscribe", "alerts.confirm"}
)
"""Endpoints whose authority is in the request itself (git's protocol, a signed link)."""
OPEN_WHEN_PRIVATE = frozenset(
    {"auth.login", "auth.login_submit", "auth.logout", "static"}
    | {"alerts.unsubscribe_form", "alerts.unsubscribe", "alerts.confirm_form", "alerts.confirm"}
)
"""Endpoints a private site still serves to anyone."""
GIT_ENDPOINTS = frozenset(
    {"git_http.about", "git_http.info_refs", "git_http.upload_pack", "git_http.receive_pack"}
)
DEFAULT_NEXT = "/admin/"
F = TypeVar("F", bound=Callable[..., Any])


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed cookie, Secure also when this request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def init_auth(app: Flask) -> None:
    """Install the session cookie, the CSRF and private-site checks and the Jinja globals."""
    config = app.extensions[EXTENSION].config
    key = secret_key(config)
    app.secret_key = hmac.new(key, b"webui-session-cookie", hashlib.sha256).hexdigest()
    app.session_interface = SessionCookies()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.web.base_url.lower().startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=config.web.session_hours),
    )
    app.extensions["policy_archive_csrf_key"] = hmac.new(key, b"csrf", hashlib.sha256).digest()
    app.before_request(check_csrf)
    app.before_request(check_private)
    app.jinja_env.globals.update(
        csrf_token=csrf_token,
        current_user=current_user,
        header_user=header_user,
        admin_nav=admin_nav,
    )


# --------------------------------------------------------------------------- who is asking


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _basic_password() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


def _find_user() -> User | None:
    state = web_state().archive.state
    bearer = _bearer()
    if bearer is not None:  # a script: the token alone decides, never the cookie
        token = ApiTokens(state).check(bearer)
        return token.as_user() if token else None
    if request.endpoint in GIT_ENDPOINTS:
        password = _basic_password()
        if password is not None:
            token = ApiTokens(state).check(password)
            return token.as_user() if token else None
    if COOKIE not in request.cookies:
        return None
    sid = session.get("sid")
    if not isinstance(sid, str):
        return None
    user = Sessions(state).user(sid)
    if user is None:
        session.pop("sid", None)  # expired or ended elsewhere
    return user


def current_user() -> User | None:
    """The user of this request (a session's, or an API token's), or None."""
    if "pa_user" not in g:
        g.pa_user = _find_user()
    return g.pa_user


def header_user() -> User | None:
    """The session's user for the page header; None when state cannot be read (the error
    page that says so must still render)."""
    try:
        user = current_user()
    except StoreError:
        return None
    return None if user is None or user.token else user


def by_token() -> bool:
    """Whether a valid Bearer token authenticated this request."""
    user = current_user()
    return user is not None and user.token and _bearer() is not None


def require_role(role: str) -> Callable[[F], F]:
    """View decorator: no user → 302 to the login page (401 JSON under /api/); a user below
    ``role`` → 403."""
    check_role(role)

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return unauthenticated()
            if not user.may(role):
                abort(403, description=f"This needs the {role} role; {user.name} is {user.role}.")
            return view(*args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]  # read by the route tests
        return wrapped  # type: ignore[return-value]

    return decorator


def unauthenticated() -> Response:
    """The answer to a request that needs a login: 401 for the API and git, else a redirect
    to the login page that comes back here."""
    if request.path.startswith("/api/"):
        response = jsonify(
            {
                "error": {
                    "status": 401,
                    "title": "Unauthorized",
                    "message": "Log in first: send Authorization: Bearer <token> "
                    "(create one with `policy-archive token create NAME`).",
                }
            }
        )
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="Policy Archive"'
        return response
    if request.endpoint in GIT_ENDPOINTS:
        challenge = Response(
            "This archive is private: give an API token as the password.\n",
            status=401,
            mimetype="text/plain",
        )
        challenge.headers["WWW-Authenticate"] = 'Basic realm="Policy Archive"'
        return challenge
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("auth.login", next=target))


def audit(action: str, detail: str) -> None:
    """Record an admin action by the current user in the audit log."""
    user = current_user()
    audit_log.record(web_state().archive.state, user.name if user else "-", action, detail)


def admin_nav() -> list[tuple[str, str]]:
    """The admin navigation entries the current user may open (endpoint, label)."""
    return nav_for(current_user(), current_app.view_functions)


# --------------------------------------------------------------------------- CSRF


def csrf_token() -> str:
    """The CSRF token of this session (of a random nonce before login)."""
    sid = session.get("sid") if current_user() is not None and not by_token() else None
    if isinstance(sid, str):
        basis = "s:" + sid
    else:
        nonce = session.get("nonce")
        if not isinstance(nonce, str):
            nonce = session["nonce"] = secrets.token_urlsafe(16)
        basis = "n:" + nonce
    key = current_app.extensions["policy_archive_csrf_key"]
    return hmac.new(key, basis.encode("ascii"), hashlib.sha256).hexdigest()


def check_csrf() -> None:
    """400 for a mutating request without this session's CSRF token (see the module doc)."""
    if request.method not in MUTATING or request.endpoint is None:
        return  # reads, and routes that do not exist (404/405 follow)
    if request.endpoint in CSRF_EXEMPT or by_token():
        return
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    if not sent or not hmac.compare_digest(sent.encode("utf-8"), csrf_token().encode("ascii")):
        log.info("CSRF token missing or wrong: %s %s", request.method, request.path)
        abort(
            400,
            description="This form has expired or did not come from this site (its CSRF token "
            "is missing or wrong). Reload the page and try again.",
        )


def check_private() -> Response | None:
    """On a private site, every endpoint but the open ones needs a user."""
    if not web_state().config.web.private or request.endpoint in OPEN_WHEN_PRIVATE:
        return None
    if current_user() is None:
        return unauthenticated()
    return None


# --------------------------------------------------------------------------- login, logout


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the admin home."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return DEFAULT_NEXT
    if target.startswith(("//", "/\\")) or any(c < " " or c == "\\" for c in target):
        return DEFAULT_NEXT
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return target


@bp.get("/login")
def login() -> str | Response:
    target = safe_next(request.args.get("next"))
    if current_user() is not None and not by_token():
        return redirect(target)
    return render_template("login.html", next=target, error=None, username="")


@bp.post("/login")
def login_submit() -> tuple[str, int] | Response:
    name = request.form.get("username", "")[:200]
    password = request.form.get("password", "")[:1000]
    target = safe_next(request.form.get("next"))
    state = web_state().archive.state
    try:
        user = authenticate(state, name, password)
    except LoginRefusedError:
        return render_template(
            "login.html",
            next=target,
            error="Wrong user name or password (after 5 wrong tries the account is locked "
            "for a while).",
            username=name,
        ), 200
    session.clear()  # a new session: nothing from before the login carries over
    session["sid"] = Sessions(state).create(user, web_state().config.web.session_hours)
    session.permanent = True
    g.pa_user = user
    audit_log.record(state, user.name, "login", f"from {request.remote_addr or '?'}")
    log.info("login: %s (%s) logged in", user.name, user.role)
    return redirect(target)


@bp.post("/logout")
def logout() -> Response:
    sid = session.get("sid")
    user = current_user()
    if isinstance(sid, str):
        Sessions(web_state().archive.state).end(sid)
    if user is not None and not user.token:
        audit_log.record(web_state().archive.state, user.name, "logout", "")
    session.clear()
    return redirect(url_for("pages.home"))
