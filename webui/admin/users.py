"""``/admin/users``: the accounts, for admins: add one, change a role, remove one (each in the
audit log). Nobody changes or removes their own account here: another admin, or the CLI, does."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from archive.accounts.errors import AccountError
from archive.accounts.roles import ROLES
from archive.accounts.tokens import ApiTokens
from archive.accounts.users import User, Users
from webui.auth import audit, current_user, require_role
from webui.context import archive

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")


def _users() -> Users:
    return Users(archive().state)


def _back() -> Response:
    return redirect(url_for("admin_users.index"), code=303)


def _other(user_id: int) -> User:
    """The account ``user_id``, if it is not the current user's own."""
    target = _users().get(user_id)
    if target is None:
        abort(404, description=f"There is no user #{user_id}.")
    me = current_user()
    if me is not None and not me.token and me.id == target.id:
        abort(403, description="You cannot change or remove your own account here.")
    return target


@bp.get("")
@require_role("admin")
def index() -> str:
    return render_template(
        "admin/users.html",
        users=_users().all(),
        tokens=ApiTokens(archive().state).all(),
        roles=ROLES,
        me=current_user(),
    )


@bp.post("/add")
@require_role("admin")
def add() -> Response:
    name = request.form.get("name", "").strip()
    role = request.form.get("role", "")
    try:
        user = _users().add(name, role, request.form.get("password", ""))
    except AccountError as exc:
        flash(f"Not added: {exc}.", "error")
        return _back()
    audit("user.add", f"{user.name} ({user.role})")
    flash(f"User {user.name} added ({user.role}).", "ok")
    return _back()


@bp.post("/<int:user_id>/role")
@require_role("admin")
def set_role(user_id: int) -> Response:
    target = _other(user_id)
    role = request.form.get("role", "")
    try:
        changed = _users().set_role(target.name, role)
    except AccountError as exc:
        flash(f"Not changed: {exc}.", "error")
        return _back()
    audit("user.role", f"{target.name}: {target.role} → {changed.role}")
    flash(f"{target.name} is now {changed.role}.", "ok")
    return _back()


@bp.post("/<int:user_id>/remove")
@require_role("admin")
def remove(user_id: int) -> Response:
    target = _other(user_id)
    _users().remove(target.name)
    audit("user.remove", f"{target.name} ({target.role})")
    flash(f"User {target.name} removed.", "ok")
    return _back()
