"""The operator's views under /admin: failing policies, the alert outbox with its delivery log,
subscriptions and webhooks, and the audit log.

Reading needs the viewer role; "Retry now" the editor role; subscriptions and webhooks the
admin role. Every change is a POST (CSRF-checked app-wide by webui.auth) recorded with
:func:`webui.auth.audit`, and goes through the same library calls as the CLI
(archive.alerts.*). A failed fetch's page is served as inert text, never as HTML on our origin.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from archive.accounts import audit as audit_log
from archive.alerts.delivery import deliver_one, send_webhook_test
from archive.alerts.errors import DeliveryError, NotifyError
from archive.alerts.outbox import FAILED, PENDING, Outbox, OutboxRow
from archive.alerts.schema import ensure_schema
from archive.alerts.subscriptions import Subscription, Subscriptions, check_webhook_address
from archive.tracking.failed import FailedBodies, FailedFetch
from archive.tracking.status import FAILING, health_of
from store.state import PolicyState
from webui.auth import audit, current_user, require_role
from webui.context import archive, int_arg, page_arg, web_state

bp = Blueprint("admin_operator", __name__, url_prefix="/admin")

PER_PAGE = 50
MAX_AUDIT_PAGES = 200
"""The audit log pages back at most this far."""
OUTBOX_STATUSES = ("", "pending", "sending", "delivered", "failed", "cancelled")
MAX_TARGET = 2000
MAX_NAME = 200
MAX_MESSAGE = 300
"""Characters of an outside error text put in a flashed message (kept in the cookie)."""
SANDBOX_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"


def _short(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# --------------------------------------------------------------------------- failing


@dataclass(frozen=True)
class FailingPolicy:
    """A configured policy whose last check failed, with the page that failed (if kept)."""

    service: str
    type: str
    state: PolicyState
    failed_fetch: FailedFetch | None
    recheck_url: str | None


def _may(role: str) -> bool:
    user = current_user()
    return user is not None and user.may(role)


def _recheck_url(service: str, type_: str) -> str | None:
    """h5's "Recheck now" for this policy, when that endpoint exists and the user may."""
    endpoint = "admin_policies.recheck"
    if endpoint not in current_app.view_functions or not _may("editor"):
        return None
    try:
        return url_for(endpoint, service=service, type_=type_)
    except BuildError:
        return None


@bp.get("/failing")
@require_role("viewer")
def failing() -> str:
    arch = archive()
    bodies = FailedBodies.of(arch.config.data_dir)
    states = [  # state alone: no git read per policy (policies no longer configured: skipped)
        st
        for key, st in arch.state.all().items()
        if health_of(st) == FAILING and arch.config.policy(*key) is not None
    ]
    states.sort(key=lambda st: (st.failing_since or st.last_check or _when(0), st.service, st.type))
    failing_policies = [
        FailingPolicy(
            st.service,
            st.type,
            st,
            bodies.get(st.service, st.type),
            _recheck_url(st.service, st.type),
        )
        for st in states
    ]
    return render_template(
        "admin/operator_failing.html",
        policies=failing_policies,
        alert_after=arch.config.schedule.failure_alert_after,
    )


@bp.get("/failing/<name:service>/<name:type_>/snapshot")
@require_role("viewer")
def failed_snapshot(service: str, type_: str) -> Response:
    """The page the policy's last failed check received, as plain text in a sandbox."""
    kept = FailedBodies.of(archive().config.data_dir).get(service, type_)
    if kept is None:
        abort(404, description=f"No failed fetch of {service} / {type_} is kept.")
    part = int_arg("part", 0, low=0, high=max(len(kept.parts) - 1, 0))
    if not kept.parts:
        abort(404, description=f"The failed check of {service} / {type_} received no page.")
    page = kept.parts[part]
    text = page.body.decode("utf-8", errors="replace")
    response = Response(text, mimetype="text/plain")
    response.headers["Content-Security-Policy"] = SANDBOX_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


# --------------------------------------------------------------------------- outbox


def _subscriptions() -> Subscriptions:
    ensure_schema(archive().state)
    return Subscriptions(archive().state)


@bp.get("/outbox")
@require_role("viewer")
def outbox() -> str:
    status = request.args.get("status", "")
    if status not in OUTBOX_STATUSES:
        choices = ", ".join(s for s in OUTBOX_STATUSES if s)
        abort(400, description=f"status must be one of {choices} (or none).")
    page = page_arg()
    ensure_schema(archive().state)
    box = Outbox(archive().state)
    total = box.total(status or None)
    entries = box.recent(limit=PER_PAGE, offset=(page - 1) * PER_PAGE, status=status or None)
    subs = {s.id: s for s in _subscriptions().all()}
    return render_template(
        "admin/operator_outbox.html",
        entries=entries,
        subs=subs,
        status=status,
        statuses=OUTBOX_STATUSES,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        total=total,
        when=_when,
        about=about,
        retryable=(PENDING, FAILED),
        may_retry=_may("editor"),
    )


def about(row: OutboxRow) -> str:
    """What an alert is about, from its facts: "Service · Type" (or "")."""
    try:
        facts = json.loads(row.facts)
    except ValueError:
        return ""
    if not isinstance(facts, dict):
        return ""
    names = [str(facts[k]) for k in ("service", "type") if facts.get(k)]
    return " · ".join(names)


def _alert_or_404(outbox_id: int) -> OutboxRow:
    ensure_schema(archive().state)
    row = Outbox(archive().state).get(outbox_id)
    if row is None:
        abort(404, description=f"There is no alert #{outbox_id} in the outbox.")
    return row


@bp.get("/outbox/<int:outbox_id>")
@require_role("viewer")
def alert(outbox_id: int) -> str:
    row = _alert_or_404(outbox_id)
    return render_template(
        "admin/operator_alert.html",
        row=row,
        sub=_subscriptions().get(row.subscription_id),
        attempts=Outbox(archive().state).attempts(row.id),
        when=_when,
        about=about(row),
        retryable=row.status in (PENDING, FAILED) and _may("editor"),
    )


@bp.post("/outbox/<int:outbox_id>/retry")
@require_role("editor")
def retry(outbox_id: int) -> Response:
    """Make the alert due now; a writer process sends it at once, else the next run does."""
    row = _alert_or_404(outbox_id)
    arch = archive()
    if not Outbox(arch.state).retry_now(row.id, time.time()):
        flash(f"Alert #{row.id} is {row.status}: there is nothing to retry.", "error")
        return redirect(url_for(".alert", outbox_id=row.id))
    audit(
        "alert.retry",
        f"alert #{row.id} ({row.event}, {row.alert_id}) to subscription "
        f"#{row.subscription_id}, was {row.status} after {row.attempts} attempt(s)",
    )
    if arch.writer:
        report = deliver_one(arch, row.id)
        again = Outbox(arch.state).get(row.id)
        outcome = again.status if again else "gone"
        detail = f": {_short(again.last_error)}" if again and again.last_error else ""
        flash(f"Alert #{row.id} sent again: {outcome}{detail} ({report}).", "info")
    else:
        flash(
            f"Alert #{row.id} is due now: the running archive's delivery worker sends it "
            "within a minute (or run `policy-archive deliver`).",
            "info",
        )
    return redirect(url_for(".alert", outbox_id=row.id))


# --------------------------------------------------------------------------- subscriptions


@bp.get("/webhooks")
@require_role("admin")
def webhooks() -> str:
    ensure_schema(archive().state)
    return _webhooks_page()


def _webhooks_page(**extra: Any) -> str:
    subs = _subscriptions().all()
    return render_template(
        "admin/operator_webhooks.html",
        subs=subs,
        counts=Outbox(archive().state).counts(),
        **extra,
    )


def _form_target(name: str) -> str:
    value = request.form.get(name, "").strip()
    if not value:
        abort(400, description=f"{name}: give a value.")
    if len(value) > MAX_TARGET:
        abort(400, description=f"{name} is too long: at most {MAX_TARGET} characters.")
    return value


def _filters() -> tuple[str, str]:
    """The form's service and document type (empty: every one)."""
    out = []
    for field in ("service", "type"):
        value = request.form.get(field, "").strip()
        if len(value) > MAX_NAME:
            abort(400, description=f"{field} is too long: at most {MAX_NAME} characters.")
        out.append(value)
    return out[0], out[1]


@bp.post("/webhooks/add")
@require_role("admin")
def add_webhook() -> tuple[str, int] | Response:
    """Add a webhook; its signing secret is shown on this answer only, never again."""
    url = _form_target("url")
    service, type_ = _filters()
    try:
        check_webhook_address(url, web_state().config.notify)
        sub = _subscriptions().add("webhook", url, service=service, type_=type_)
    except NotifyError as exc:
        return _webhooks_page(error=str(exc), form_url=url), 400
    audit("webhook.add", f"subscription #{sub.id}: webhook {sub.target} → {sub.describe()}")
    response = Response(_webhooks_page(created=sub))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/subscriptions/email")
@require_role("admin")
def add_email() -> tuple[str, int] | Response:
    """Add an email subscription: pending until the address owner confirms (double opt-in)."""
    address = _form_target("email")
    service, type_ = _filters()
    arch = archive()
    try:
        sub = _subscriptions().add("email", address, service=service, type_=type_)
    except NotifyError as exc:
        return _webhooks_page(error=str(exc), form_email=address), 400
    Outbox(arch.state).queue_confirmation(sub.id, now=time.time())
    audit("subscription.add", f"subscription #{sub.id}: email {sub.target} → {sub.describe()}")
    flash(
        f"Subscription #{sub.id} added: a confirmation email to {sub.target} is queued; alerts "
        "start once its owner follows the link.",
        "info",
    )
    return redirect(url_for(".webhooks"))


def _subscription_or_404(sub_id: int) -> Subscription:
    sub = _subscriptions().get(sub_id)
    if sub is None:
        abort(404, description=f"There is no subscription #{sub_id}.")
    return sub


@bp.post("/subscriptions/<int:sub_id>/disable")
@require_role("admin")
def disable(sub_id: int) -> Response:
    user = current_user()
    note = f"disabled by {user.name if user else '?'}"
    return _switch(sub_id, "disable", lambda subs, id_: subs.disable(id_, note=note))


@bp.post("/subscriptions/<int:sub_id>/enable")
@require_role("admin")
def enable(sub_id: int) -> Response:
    return _switch(sub_id, "enable", lambda subs, id_: subs.enable(id_))


def _switch(sub_id: int, verb: str, change: Callable[[Subscriptions, int], object]) -> Response:
    """Disable or enable a subscription (``verb``), audit it and say so on the webhooks page."""
    sub = _subscription_or_404(sub_id)
    try:
        change(_subscriptions(), sub.id)
    except NotifyError as exc:
        flash(str(exc), "error")
        return redirect(url_for(".webhooks"))
    audit(f"subscription.{verb}", f"subscription #{sub.id}: {sub.channel} {sub.target}")
    flash(f"Subscription #{sub.id} ({sub.channel} {sub.target}) {verb}d.", "info")
    return redirect(url_for(".webhooks"))


@bp.post("/webhooks/<int:sub_id>/test")
@require_role("admin")
def test_webhook(sub_id: int) -> Response:
    """Send a signed test event to the webhook now and say what it answered."""
    sub = _subscription_or_404(sub_id)
    try:
        status = send_webhook_test(archive(), sub)
    except DeliveryError as exc:
        code = f"HTTP {exc.status}: " if exc.status else ""
        result = f"failed: {code}{_short(exc.reason)}"
        category = "error"
    except NotifyError as exc:
        abort(400, description=str(exc))
    else:
        result, category = f"delivered: HTTP {status}", "info"
    audit("webhook.test", f"subscription #{sub.id}: {sub.target}: {result}")
    flash(f"Test event to webhook #{sub.id} ({sub.target}) {result}", category)
    return redirect(url_for(".webhooks"))


# --------------------------------------------------------------------------- audit


@bp.get("/audit", endpoint="audit")
@require_role("viewer")
def audit_page() -> str:
    page = page_arg(MAX_AUDIT_PAGES)
    entries = audit_log.recent(
        archive().state, limit=PER_PAGE + 1, offset=(page - 1) * PER_PAGE
    )  # one more than a page: whether there is a next one
    shown = entries[:PER_PAGE]
    more = len(entries) > PER_PAGE and page < MAX_AUDIT_PAGES
    return render_template("admin/operator_audit.html", entries=shown, page=page, more=more)
