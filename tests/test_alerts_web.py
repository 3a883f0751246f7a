"""The email links, through Flask's test client: unsubscribe (RFC 8058) and confirmation."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from archive.alerts import LISTENERS, deliver_pending
from archive.alerts.subscriptions import Subscriptions
from archive.alerts.tokens import CONFIRM, make_token, secret_key
from archive.app import Archive
from tests.conftest import seed_text
from tests.smtp_server import SmtpServer
from tests.support import record_change
from webui import alerts
from webui.context import EXTENSION, WebState

BASE = "https://archive.example"
OLD = seed_text("workoptima-privacy-policy.txt")


@pytest.fixture
def setup(make_config, smtp_server) -> Iterator[tuple[Archive, FlaskClient, SmtpServer]]:
    config = make_config(
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        web={"base_url": BASE, "secret_key": "web-secret"},
        alert=[{"channel": "email", "target": "alice@example.org", "first_records": True}],
    )
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        app = Flask(__name__)
        app.extensions[EXTENSION] = WebState(config=config, archive=archive)
        app.register_blueprint(alerts.bp)
        yield archive, app.test_client(), smtp_server


def unsubscribe_path(message) -> str:
    url = message["List-Unsubscribe"].split(", ")[0].strip("<>")
    assert url.startswith(BASE)
    return url[len(BASE) :]


def test_get_shows_a_form_and_only_the_post_unsubscribes(setup):
    archive, client, smtp = setup
    record_change(archive, OLD)
    deliver_pending(archive)
    [message] = smtp.wait_for(1)
    path = unsubscribe_path(message)
    page = client.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'method="post"' in html and "alice@example.org" in html
    assert Subscriptions(archive.state).get(1).status == "active"  # a GET changes nothing
    done = client.post(path)
    assert done.status_code == 200 and "Unsubscribed" in done.get_data(as_text=True)
    assert Subscriptions(archive.state).get(1).status == "unsubscribed"
    assert client.get(path).status_code == 200  # the old link still answers
    record_change(archive, OLD.replace("Analytics", "Web analytics"))
    assert deliver_pending(archive).delivered == 0
    assert len(smtp.messages) == 1


def test_rfc_8058_one_click_post_without_cookies(setup):
    archive, client, smtp = setup
    record_change(archive, OLD)
    deliver_pending(archive)
    [message] = smtp.wait_for(1)
    response = client.post(
        unsubscribe_path(message),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert Subscriptions(archive.state).get(1).status == "unsubscribed"


def test_forged_or_misused_tokens_are_refused(setup):
    archive, client, smtp = setup
    record_change(archive, OLD)
    deliver_pending(archive)
    [message] = smtp.wait_for(1)
    path = unsubscribe_path(message)
    body, mac = path.rsplit("/", 1)[1].split(".")
    forged = client.post(f"/alerts/unsubscribe/{body}.{mac[:-2]}AA")
    assert forged.status_code == 400
    confirm_token = make_token(secret_key(archive.config), CONFIRM, 1)
    assert client.post(f"/alerts/unsubscribe/{confirm_token}").status_code == 400
    assert client.post("/alerts/unsubscribe/nonsense").status_code == 400
    other_key = make_token(b"another archive", "unsubscribe", 1)
    assert client.post(f"/alerts/unsubscribe/{other_key}").status_code == 400
    missing = make_token(secret_key(archive.config), "unsubscribe", 99)
    assert client.post(f"/alerts/unsubscribe/{missing}").status_code == 404
    assert Subscriptions(archive.state).get(1).status == "active"


def test_confirmation_needs_a_post_and_expires(setup):
    archive, client, _ = setup
    subs = Subscriptions(archive.state)
    sub = subs.add("email", "bob@example.org", service="WorkOptima")
    assert sub.status == "pending"
    key = secret_key(archive.config)
    token = make_token(key, CONFIRM, sub.id)
    page = client.get(f"/alerts/confirm/{token}")
    assert page.status_code == 200 and "Confirm" in page.get_data(as_text=True)
    assert subs.get(sub.id).status == "pending"
    assert client.post(f"/alerts/confirm/{token}").status_code == 200
    assert subs.get(sub.id).status == "active"
    expired = make_token(key, CONFIRM, sub.id, now=0)
    response = client.post(f"/alerts/confirm/{expired}")
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)


def test_pages_escape_what_they_show(setup):
    archive, client, _ = setup
    sub = Subscriptions(archive.state).add(
        "webhook", "https://hooks.example/x", service="<b>Evil</b>"
    )
    token = make_token(secret_key(archive.config), "unsubscribe", sub.id)
    html = client.get(f"/alerts/unsubscribe/{token}").get_data(as_text=True)
    assert "<b>Evil</b>" not in html and "&lt;b&gt;Evil&lt;/b&gt;" in html
    assert re.search(r"<form method=\"post\"", html)


def test_the_blueprint_on_the_real_app(make_config):
    from webui import create_app

    config = make_config(web={"secret_key": "web-secret"})
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        sub = Subscriptions(archive.state).add("webhook", "https://hooks.example/x")
        app = create_app(config, archive=archive)
        assert "alerts" in app.blueprints
        client = app.test_client()
        token = make_token(secret_key(config), "unsubscribe", sub.id)
        page = client.get(f"/alerts/unsubscribe/{token}")
        assert page.status_code == 200 and "Content-Security-Policy" in page.headers
        assert "style=" not in page.get_data(as_text=True)  # CSP: no inline styles
        bad = client.post("/alerts/unsubscribe/forged.token")
        assert bad.status_code == 400 and "not valid" in bad.get_data(as_text=True)
        assert client.post(f"/alerts/unsubscribe/{token}").status_code == 200
        assert Subscriptions(archive.state).get(sub.id).status == "unsubscribed"
