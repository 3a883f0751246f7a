"""``/admin/``: who you are, where to go, and what needs attention (failing policies, alerts
waiting to be delivered or given up on); ``/api/admin/me``: who a token or session is."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from werkzeug.wrappers import Response

from archive.alerts.outbox import FAILED, PENDING, Outbox
from archive.alerts.schema import ensure_schema
from webui import queries
from webui.auth import current_user, require_role
from webui.context import archive

bp = Blueprint("admin_home", __name__)


@bp.get("/admin/")
@require_role("viewer")
def index() -> str:
    state = archive().state
    ensure_schema(state)
    outbox = Outbox(state)
    counts = queries.counts()
    return render_template(
        "admin/home.html",
        user=current_user(),
        counts=counts,
        pending=outbox.total(PENDING),
        failed=outbox.total(FAILED),
    )


@bp.get("/api/admin/me")
@require_role("viewer")
def me() -> Response:
    """Who this session or token is: a script's check that its token works."""
    user = current_user()
    assert user is not None  # require_role
    return jsonify({"name": user.name, "role": user.role, "token": user.token})
