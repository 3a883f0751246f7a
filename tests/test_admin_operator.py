"""The operator's views through HTTP: failing policies with the page that failed (served
inertly), the outbox with "retry now", webhooks and subscriptions, the audit log, and roles.

Real parts: the CLI's ``check`` against a fixture server, a real webhook receiver and SMTP
server, the Flask test client logged in through the login form.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from archive.accounts import audit as audit_log
from archive.alerts import LISTENERS
from archive.alerts.outbox import Outbox
from archive.alerts.subscriptions import Subscriptions
from archive.app import Archive
from store.state import State
from tests.auth_support import add_user, csrf, login
from tests.conftest import seed_text
from tests.fixture_server import FixtureServer
from tests.smtp_server import SmtpServer
from tests.support import Cli, smtp_table
from tests.webhook_receiver import WebhookReceiver
from webui import close_app, create_app
from webui.admin.operator import PER_PAGE

GOOD = "<html><body><main><h1>Privacy</h1><p>{}</p></main></body></html>".format(
    seed_text("workoptima-privacy-policy.txt")[:3000]
)
XSS = "<img src=x onerror=alert(1)>"
ERROR_PAGE = f"<html><body><h1>Oops</h1><script>alert('page')</script>{XSS}</body></html>"
WALL = (
    f"<html><head><title>Sign in to Acme {XSS}</title></head><body><form>"
    '<input type="password" name="p"></form><script>alert("wall")</script></body></html>'
)
VIEWER, EDITOR, ADMIN = "vera", "eddie", "ada"


@dataclass
class Site:
    cli: Cli
    server: FixtureServer
    receiver: WebhookReceiver
    smtp: SmtpServer

    @property
    def state_path(self):
        return self.cli.config.state_path


@pytest.fixture
def site(make_cli, fixture_server, webhook_receiver, smtp_server) -> Site:
    fixture_server.set("/ok", GOOD)
    fixture_server.set("/down", ERROR_PAGE, status=503)
    fixture_server.set("/wall", WALL)
    cli = make_cli(
        f"""
data_dir = "data"
[fetch]
allow_private_addresses = true
per_host_delay = 0.0
timeout = 5.0
[web]
base_url = "https://archive.example"
secret_key = "operator-secret"
{smtp_table(smtp_server)}
[notify]
allow_private_addresses = true
max_attempts = 1
[[alert]]
channel = "webhook"
target = "{webhook_receiver.url("/config")}"
first_records = true
[[policy]]
service = "Fine"
type = "Privacy Policy"
url = "{fixture_server.url("/ok")}"
[[policy]]
service = "Down"
type = "Privacy Policy"
url = "{fixture_server.url("/down")}"
[[policy]]
service = "Walled"
type = "Terms of Service"
url = "{fixture_server.url("/wall")}"
"""
    )
    cli("init")
    for name, role in ((VIEWER, "viewer"), (EDITOR, "editor"), (ADMIN, "admin")):
        add_user(cli.path, name, role)
    return Site(cli, fixture_server, webhook_receiver, smtp_server)


@pytest.fixture
def app(site) -> Iterator[Flask]:
    """The web UI as ``serve`` runs it: a reader beside whichever process writes."""
    app = create_app(site.cli.config)
    yield app
    close_app(app)


def client_for(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    login(client, name)
    return client


def post(client: FlaskClient, path: str, **data: str):
    return client.post(path, data={"csrf_token": csrf(client), **data})


# --------------------------------------------------------------------------- failing


def failing_row(html: str, service: str) -> str:
    rows = [r for r in html.split("<tr") if f">{service} ·" in r]
    assert len(rows) == 1, html
    return rows[0]


def test_failing_policies_with_since_error_and_the_page_that_failed(site, app):
    site.cli("check", code=1)
    state = State(site.state_path)
    first = state.get("Down", "Privacy Policy")
    assert first.failures == 1 and first.failing_since == first.last_check
    began = first.last_check - timedelta(hours=5)  # as if the run had begun long ago
    state.put(dataclasses.replace(first, failing_since=began))
    site.cli("check", code=1)
    second = state.get("Down", "Privacy Policy")
    assert second.failures == 2 and second.failing_since == began  # kept, not restarted

    viewer = client_for(app, VIEWER)
    page = viewer.get("/admin/failing")
    assert page.status_code == 200
    html = page.text
    assert "Fine ·" not in html  # recorded, not failing
    down = failing_row(html, "Down")
    assert f'datetime="{began.isoformat()}"' in down
    assert "HTTP 503" in down and "transient" in down
    walled = failing_row(html, "Walled")
    assert "login wall" in walled and "needs a person" in walled
    # the error text came from the page's title: escaped, never markup
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in walled
    assert "<script>alert" not in html

    for row, body_marker in ((down, "alert('page')"), (walled, 'alert("wall")')):
        [link] = re.findall(r'href="(/admin/failing/[^"]+/snapshot[^"]*)"', row)
        snapshot = viewer.get(link.replace("&amp;", "&"))
        assert snapshot.status_code == 200
        assert snapshot.mimetype == "text/plain"
        assert "sandbox" in snapshot.headers["Content-Security-Policy"]
        assert snapshot.headers["X-Content-Type-Options"] == "nosniff"
        assert body_marker in snapshot.text and XSS in snapshot.text  # the bytes, inert

    site.server.set("/down", GOOD.replace("Privacy", "Privacy notice"))
    site.cli("check", code=1)  # Walled still fails
    again = viewer.get("/admin/failing").text
    assert "Down ·" not in again and "Walled ·" in again
    assert State(site.state_path).get("Down", "Privacy Policy").failing_since is None
    assert viewer.get("/admin/failing/Down/Privacy%20Policy/snapshot").status_code == 404


def test_the_failed_page_is_kept_bounded(site, app):
    # a page whose text is too short to be the policy, under 2 MB of markup
    site.server.set("/down", "<p>Short.</p><!--" + "x" * 2_000_000 + "-->")
    site.cli("check", code=1)
    viewer = client_for(app, VIEWER)
    snapshot = viewer.get("/admin/failing/Down/Privacy%20Policy/snapshot")
    assert snapshot.status_code == 200
    assert 1000 < len(snapshot.data) <= 256 * 1024
    kept = list((site.cli.config.data_dir / "failed").iterdir())
    assert len(kept) == 2 and all(p.stat().st_size < 300 * 1024 for p in kept)


# --------------------------------------------------------------------------- outbox


def failed_alert(site: Site) -> int:
    """A first-record webhook alert that failed (one attempt allowed, the receiver said 500)."""
    site.receiver.script(500)
    site.cli("check", code=1)
    [row] = Outbox(State(site.state_path)).rows(status="failed")
    return row.id


def test_outbox_lists_attempts_and_retry_now_sends_again(site, app):
    alert_id = failed_alert(site)
    viewer = client_for(app, VIEWER)
    listing = viewer.get("/admin/outbox?status=failed")
    assert listing.status_code == 200
    row = next(r for r in listing.text.split("<tr") if f"/admin/outbox/{alert_id}" in r)
    assert "failed" in row and ">500<" in row and "HTTP 500" in row
    assert "Fine · Privacy Policy" in row and "Retry now" not in row
    detail = viewer.get(f"/admin/outbox/{alert_id}").text
    assert "Delivery log" in detail and ">500<" in detail
    assert "Retry now" not in detail  # a viewer is not offered the button
    assert post(viewer, f"/admin/outbox/{alert_id}/retry").status_code == 403

    editor = client_for(app, EDITOR)
    assert "Retry now" in editor.get(f"/admin/outbox/{alert_id}").text
    assert f'action="/admin/outbox/{alert_id}/retry"' in editor.get("/admin/outbox").text
    answer = post(editor, f"/admin/outbox/{alert_id}/retry")
    assert answer.status_code == 302
    assert "due now" in editor.get(answer.headers["Location"]).text
    assert Outbox(State(site.state_path)).get(alert_id).status == "pending"
    assert len(site.receiver.calls) == 1

    site.cli("deliver")  # the writer (`run`'s worker, or `deliver`) sends it
    [_, call] = site.receiver.wait_for(2)
    assert call.path == "/config" and call.json()["type"] == "version.recorded"
    after = viewer.get(f"/admin/outbox/{alert_id}").text
    assert "delivered" in after and after.count("<tr>") == 3  # header + two attempts
    assert post(editor, f"/admin/outbox/{alert_id}/retry").status_code == 302
    assert Outbox(State(site.state_path)).get(alert_id).status == "delivered"  # nothing to do


def test_retry_now_in_the_writer_process_delivers_at_once(site):
    alert_id = failed_alert(site)
    config = site.cli.config
    with Archive.open(config, writer=True, listeners=LISTENERS) as writer:
        app = create_app(config, archive=writer)  # as `policy-archive run` builds it
        editor = client_for(app, EDITOR)
        answer = post(editor, f"/admin/outbox/{alert_id}/retry")
        assert answer.status_code == 302
        [_, call] = site.receiver.wait_for(2)
        assert call.headers["webhook-id"] == site.receiver.calls[0].headers["webhook-id"]
        assert Outbox(writer.state).get(alert_id).status == "delivered"
        assert "sent again: delivered" in editor.get(answer.headers["Location"]).text


# --------------------------------------------------------------------------- webhooks


def test_add_webhook_shows_its_secret_once_and_the_test_event_is_signed(site, app):
    admin = client_for(app, ADMIN)
    url = site.receiver.url("/added?x=<script>alert(1)</script>")
    added = post(admin, "/admin/webhooks/add", url=url, service="Fine")
    assert added.status_code == 200
    assert added.headers["Cache-Control"] == "no-store"
    [secret] = re.findall(r"whsec_[A-Za-z0-9+/=]+", added.text)
    assert "<script>alert(1)" not in added.text and "&lt;script&gt;" in added.text
    state = State(site.state_path)
    sub = next(s for s in Subscriptions(state).all() if s.target == url)
    assert sub.secret == secret and sub.service == "Fine" and sub.status == "active"

    listing = admin.get("/admin/webhooks").text
    assert secret not in listing and "&lt;script&gt;" in listing  # never shown again
    assert re.findall(r"whsec_[A-Za-z0-9+/=]+", listing) == []

    tested = post(admin, f"/admin/webhooks/{sub.id}/test")
    assert tested.status_code == 302
    [call] = site.receiver.wait_for(1)
    assert call.verify(secret)
    assert call.json()["type"] == "webhook.test"
    assert call.json()["data"]["subscription"] == sub.id
    assert urlsplit(call.path).path == "/added"
    assert f"Test event to webhook #{sub.id}" in (shown := admin.get("/admin/webhooks").text)
    assert "delivered: HTTP 204" in shown
    assert Outbox(state).rows(subscription_id=sub.id) == []  # a test is not an alert

    site.receiver.script(500)
    post(admin, f"/admin/webhooks/{sub.id}/test")
    assert "failed: HTTP 500" in admin.get("/admin/webhooks").text


def test_bad_webhook_urls_are_refused_with_a_message(site, app):
    admin = client_for(app, ADMIN)
    for url, message in (
        ("ftp://example.org/hook", "webhook URL"),
        ("http://no-such-host.invalid/hook", "could not resolve host"),
    ):
        answer = post(admin, "/admin/webhooks/add", url=url)
        assert answer.status_code == 400, url
        assert message in answer.text, answer.text
    assert all(s.origin == "config" for s in Subscriptions(State(site.state_path)).all())


def test_disable_enable_and_an_email_subscription(site, app):
    admin = client_for(app, ADMIN)
    state = State(site.state_path)
    assert post(admin, "/admin/subscriptions/email", email="olga@example.org").status_code == 302
    email = next(s for s in Subscriptions(state).all() if s.channel == "email")
    assert email.status == "pending"
    site.cli("deliver")
    [message] = site.smtp.wait_for(1)
    assert message["To"] == "olga@example.org" and "/alerts/confirm/" in str(message)
    # a pending address is never enabled by someone else's click
    assert post(admin, f"/admin/subscriptions/{email.id}/enable").status_code == 302
    assert Subscriptions(state).get(email.id).status == "pending"

    hook = Subscriptions(state).all()[0]
    assert post(admin, f"/admin/subscriptions/{hook.id}/disable").status_code == 302
    assert Subscriptions(state).get(hook.id).status == "disabled"
    page = admin.get("/admin/webhooks").text
    assert f"/admin/subscriptions/{hook.id}/enable" in page
    site.cli("check", code=1)  # first records: the disabled webhook hears nothing
    assert site.receiver.calls == []
    assert post(admin, f"/admin/subscriptions/{hook.id}/enable").status_code == 302
    assert Subscriptions(state).get(hook.id).status == "active"


# --------------------------------------------------------------------------- audit, roles


def test_every_action_is_in_the_audit_log(site, app):
    alert_id = failed_alert(site)
    editor, admin = client_for(app, EDITOR), client_for(app, ADMIN)
    post(editor, f"/admin/outbox/{alert_id}/retry")
    post(admin, "/admin/webhooks/add", url=site.receiver.url("/audited"))
    sub = Subscriptions(State(site.state_path)).all()[-1]
    post(admin, f"/admin/webhooks/{sub.id}/test")
    post(admin, f"/admin/subscriptions/{sub.id}/disable")
    post(admin, f"/admin/subscriptions/{sub.id}/enable")
    post(admin, "/admin/subscriptions/email", email="audit@example.org")

    log = client_for(app, VIEWER).get("/admin/audit")
    assert log.status_code == 200
    entries = [
        (match.group(1), row)
        for row in log.text.split("<tr>")[2:]
        if (match := re.search(r"<code>([^<]+)</code>", row)) and match.group(1) != "login"
    ]
    actions = [action for action, _ in entries]
    rows = [row for _, row in entries]
    assert actions[:6] == [
        "subscription.add",
        "subscription.enable",
        "subscription.disable",
        "webhook.test",
        "webhook.add",
        "alert.retry",
    ]
    assert f"<td>{ADMIN}</td>" in rows[0] and f"<td>{EDITOR}</td>" in rows[5]
    assert f"alert #{alert_id}" in rows[5] and "/audited" in rows[4]


def operator_posts(app: Flask) -> list[str]:
    """Every mutating route of the operator's views, with 1 for each id."""
    paths = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin_operator.") and "POST" in (rule.methods or ()):
            paths.append(re.sub(r"<[^>]+>", "1", rule.rule))
    return paths


def test_roles_viewer_reads_editor_retries_admin_manages(site, app):
    failed_alert(site)
    posts = operator_posts(app)
    assert len(posts) == 6, posts
    viewer, editor = client_for(app, VIEWER), client_for(app, EDITOR)
    for path in posts:
        assert post(viewer, path).status_code == 403, path
        expected = 302 if path.endswith("/retry") else 403
        assert post(editor, path).status_code == expected, path
    for path in ("/admin/failing", "/admin/outbox", "/admin/outbox/1", "/admin/audit"):
        assert viewer.get(path).status_code == 200, path
    assert viewer.get("/admin/webhooks").status_code == 403
    assert editor.get("/admin/webhooks").status_code == 403
    assert client_for(app, ADMIN).get("/admin/webhooks").status_code == 200
    anonymous = app.test_client()
    assert anonymous.get("/admin/failing").headers["Location"].startswith("/login")
    assert Subscriptions(State(site.state_path)).get(1).status == "active"


def test_mutating_routes_refuse_get_and_the_recheck_button_is_for_editors(site, app):
    site.cli("check", code=1)
    admin = client_for(app, ADMIN)
    for path in operator_posts(app):
        assert admin.get(path).status_code == 405, path
    has_recheck = "admin_policies.recheck" in app.view_functions
    editor_page = client_for(app, EDITOR).get("/admin/failing").text
    assert ("Recheck now" in editor_page) == has_recheck
    assert "Recheck now" not in client_for(app, VIEWER).get("/admin/failing").text


def test_a_state_file_from_before_failing_since_gets_the_column(tmp_path):
    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE policy_state (service TEXT NOT NULL, type TEXT NOT NULL, "
            "last_check TEXT, last_success TEXT, last_change TEXT, validators TEXT NOT NULL "
            "DEFAULT '[]', body_hash TEXT, text_hash TEXT, failures INTEGER NOT NULL DEFAULT 0, "
            "last_error TEXT, last_error_transient INTEGER, suspect_hash TEXT, "
            "suspect_since TEXT, PRIMARY KEY (service, type))"
        )
        db.execute("INSERT INTO policy_state (service, type, failures) VALUES ('S', 'T', 4)")
    db.close()
    state = State(path)
    old = state.get("S", "T")
    assert old.failures == 4 and old.failing_since is None  # began before it was kept
    state.put(dataclasses.replace(old, failing_since=datetime(2026, 1, 2, tzinfo=UTC)))
    state.close()
    assert State(path).get("S", "T").failing_since == datetime(2026, 1, 2, tzinfo=UTC)


def test_the_audit_log_is_paged_newest_first(site, app):
    state = State(site.state_path)
    for i in range(PER_PAGE + 10):
        audit_log.record(state, "script", "test.action", f"entry {i:03d}")
    viewer = client_for(app, VIEWER)  # its login is the newest entry
    first = viewer.get("/admin/audit").text
    assert "entry 059" in first and "entry 009" not in first
    assert 'href="/admin/audit?page=2"' in first
    second = viewer.get("/admin/audit?page=2").text
    assert "entry 009" in second and "entry 010" in second and "entry 059" not in second
    assert "page=3" not in second
    assert viewer.get("/admin/audit?page=0").status_code == 400
