"""The alert commands through click's CliRunner, with a real SMTP server and receiver."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import Config
from tests.conftest import seed_text
from tests.support import Cli, record_change, smtp_table
from webui import alerts
from webui.context import EXTENSION, WebState

BASE = "https://archive.example"
OLD = seed_text("workoptima-privacy-policy.txt")


@pytest.fixture
def cli(make_cli, smtp_server, webhook_receiver) -> Cli:
    cli = make_cli(
        f"""
data_dir = "data"
[web]
base_url = "{BASE}"
secret_key = "cli-secret"
{smtp_table(smtp_server)}
[notify]
allow_private_addresses = true
[[alert]]
channel = "webhook"
target = "{webhook_receiver.url("/config")}"
first_records = true
"""
    )
    cli("init")
    return cli


def record(config: Config, text: str) -> None:
    with Archive.open(config, writer=True, listeners=LISTENERS) as archive:
        record_change(archive, text)


def test_subscribe_confirm_deliver_list_and_unsubscribe(cli, smtp_server, webhook_receiver):
    out = cli("subscribe", "--email", "bob@example.org", "--service", "WorkOptima").output
    assert "Subscription #2" in out and "confirmation email is queued" in out
    hook = cli(
        "subscribe",
        "--webhook",
        webhook_receiver.url("/cli"),
        "--query",
        '"personal information"',
        "--first-records",
    ).output
    secret = hook.rsplit(": ", 1)[1].strip()
    assert secret.startswith("whsec_")
    listing = json.loads(cli("subscriptions", "--json", "--show-secrets").output)
    assert [(s["id"], s["channel"], s["status"], s["origin"]) for s in listing] == [
        (1, "webhook", "active", "config"),
        (2, "email", "pending", "cli"),
        (3, "webhook", "active", "cli"),
    ]
    assert listing[2]["secret"] == secret and listing[1]["pending"] == 1
    assert [s["first_records"] for s in listing] == [True, False, True]

    assert "1 delivered" in cli("deliver").output
    [confirmation] = smtp_server.wait_for(1)
    assert confirmation["To"] == "bob@example.org"
    assert "List-Unsubscribe" not in confirmation
    text = confirmation.get_body(preferencelist=("plain",)).get_content()
    link = next(w for w in text.split() if w.startswith(f"{BASE}/alerts/confirm/"))

    record(cli.config, OLD)  # bob has not confirmed yet: only the webhooks hear of it
    assert "2 delivered" in cli("deliver").output
    assert len(smtp_server.messages) == 1

    with Archive.open(cli.config) as archive:
        app = Flask(__name__)
        app.extensions[EXTENSION] = WebState(config=cli.config, archive=archive)
        app.register_blueprint(alerts.bp)
        assert app.test_client().post(link[len(BASE) :]).status_code == 200

    record(cli.config, OLD.replace("Analytics", "Analytics and advertising"))
    assert "2 delivered" in cli("deliver").output  # bob, and the config webhook
    change = smtp_server.wait_for(2)[1]
    assert change["To"] == "bob@example.org"
    assert change["Subject"] == "Change to WorkOptima Privacy Policy"
    paths = [c.path for c in webhook_receiver.wait_for(3)]
    assert paths == ["/config", "/cli", "/config"]  # the saved search matched once
    assert webhook_receiver.calls[1].verify(secret)

    table = cli("subscriptions").output
    assert "saved search '\"personal information\"' in every policy" in table
    header, _, *rows = table.splitlines()
    assert "first records" in header
    first = header.index("first records")
    assert [row[first : first + 3] for row in rows] == ["yes", "no ", "yes"]
    assert "bob@example.org" in table and "active" in table

    assert "stopped" in cli("unsubscribe", "2").output
    assert "comes from an [[alert]] table" in cli("unsubscribe", "1", code=1).output
    assert "no subscription #9" in cli("unsubscribe", "9", code=1).output
    statuses = {s["id"]: s["status"] for s in json.loads(cli("subscriptions", "--json").output)}
    assert statuses == {1: "active", 2: "unsubscribed", 3: "active"}


def test_subscribe_refuses_bad_input_with_a_message(cli):
    assert "exactly one of" in cli("subscribe", code=2).output
    assert "not an email address" in cli("subscribe", "--email", "bob", code=1).output
    out = cli("subscribe", "--webhook", "https://h.example/x", "--query", "-x", code=1).output
    assert "no word to look for" in out
    out = cli("subscribe", "--webhook", "https://h.example/x", "--digest", code=1).output
    assert "email subscriptions only" in out
    cli("subscribe", "--apprise", "json://h.example/x")
    assert (
        "already subscribed" in cli("subscribe", "--apprise", "json://h.example/x", code=1).output
    )


def test_failed_alerts_are_listed(cli, webhook_receiver):
    webhook_receiver.default = (302, {"Location": "https://elsewhere.example/"})
    record(cli.config, OLD)
    result = cli("deliver")
    assert "1 failed" in result.output
    failed = json.loads(cli("subscriptions", "--failed", "--json").output)
    assert [(f["subscription"], f["event"], f["attempts"]) for f in failed] == [
        (1, "version_recorded", 1)
    ]
    assert "redirects are not followed" in failed[0]["error"]
    assert "302" in cli("subscriptions", "--failed").output
