"""Alert links from emails: unsubscribe (RFC 8058 one-click too) and double opt-in confirmation.

A GET only shows a page with a button (mail scanners and link previews follow GETs: they must
never unsubscribe or confirm anyone); the POST does it. The signed token in the URL is the
authority, so the POST needs no session or CSRF cookie: RFC 8058 mail clients send
``List-Unsubscribe=One-Click`` to the same URL without cookies.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template_string

from archive.alerts.errors import TokenError
from archive.alerts.schema import ensure_schema
from archive.alerts.subscriptions import ACTIVE, PENDING, UNSUBSCRIBED, Subscription, Subscriptions
from archive.alerts.tokens import CONFIRM, CONFIRM_TTL, UNSUBSCRIBE, read_token, secret_key
from webui.context import web_state

bp = Blueprint("alerts", __name__, url_prefix="/alerts")

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · Policy Archive</title></head>
<body><main>
<h1>{{ title }}</h1>
<p>{{ message }}</p>
{% if button %}<form method="post" action=""><button type="submit">{{ button }}</button></form>
{% endif %}<p><a href="/">Policy Archive</a></p>
</main></body></html>
"""


def _page(
    title: str, message: str, button: str | None = None, status: int = 200
) -> tuple[str, int]:
    return render_template_string(PAGE, title=title, message=message, button=button), status


def _subscription(action: str, token: str) -> tuple[Subscriptions, Subscription]:
    """The subscription a valid token names, or a 400/404 page."""
    state = web_state()
    try:
        sub_id = read_token(
            secret_key(state.config),
            action,
            token,
            max_age=CONFIRM_TTL if action == CONFIRM else None,
        )
    except TokenError as exc:
        abort(400, description=f"{exc}.")
    ensure_schema(state.archive.state)
    subscriptions = Subscriptions(state.archive.state)
    sub = subscriptions.get(sub_id)
    if sub is None:
        abort(404, description="This subscription does not exist any more.")
    return subscriptions, sub


@bp.get("/unsubscribe/<token>")
def unsubscribe_form(token: str) -> tuple[str, int]:
    _, sub = _subscription(UNSUBSCRIBE, token)
    if sub.status == UNSUBSCRIBED:
        return _page("Unsubscribed", f"{sub.target} gets no more alerts about {sub.describe()}.")
    return _page(
        "Unsubscribe?", f"Stop emailing {sub.target} about {sub.describe()}?", "Unsubscribe"
    )


@bp.post("/unsubscribe/<token>")
def unsubscribe(token: str) -> tuple[str, int]:
    """The button's POST and RFC 8058's ``List-Unsubscribe=One-Click`` POST alike."""
    subscriptions, sub = _subscription(UNSUBSCRIBE, token)
    if sub.status != UNSUBSCRIBED:
        subscriptions.set_status(sub.id, UNSUBSCRIBED, note="unsubscribed from an email link")
    return _page("Unsubscribed", f"{sub.target} gets no more alerts about {sub.describe()}.")


@bp.get("/confirm/<token>")
def confirm_form(token: str) -> tuple[str, int]:
    _, sub = _subscription(CONFIRM, token)
    if sub.status == ACTIVE:
        return _page("Confirmed", f"{sub.target} already gets alerts about {sub.describe()}.")
    if sub.status != PENDING:
        return _page(
            "Not confirmed", "This subscription was cancelled; subscribe again.", status=410
        )
    return _page(
        "Confirm your subscription", f"Email {sub.target} about {sub.describe()}?", "Confirm"
    )


@bp.post("/confirm/<token>")
def confirm(token: str) -> tuple[str, int]:
    subscriptions, sub = _subscription(CONFIRM, token)
    if sub.status == PENDING:
        subscriptions.set_status(sub.id, ACTIVE, note="confirmed from the email link")
    elif sub.status != ACTIVE:
        return _page(
            "Not confirmed", "This subscription was cancelled; subscribe again.", status=410
        )
    return _page("Confirmed", f"{sub.target} will get alerts about {sub.describe()}.")
