"""The outbox keeps alerts in step with git: crashes, catch-up, re-extracts, saved searches."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from archive.alerts import LISTENERS, deliver_pending
from archive.alerts.outbox import Outbox
from archive.alerts.subscriptions import Subscriptions
from archive.app import Archive
from archive.config import config_from_mapping
from archive.tracking.events import VersionRecorded
from store.git.versions import REEXTRACT, NewVersion
from tests.conftest import REPO, seed_text
from tests.support import record_change
from tests.webhook_receiver import WebhookReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SERVICE, TYPE = "WorkOptima", "Privacy Policy"
OLD = seed_text("workoptima-privacy-policy.txt")
PHRASE = "sell your personal information"
NEW = OLD.replace("your information will never be sold to", f"we may {PHRASE} to")


def raw_config(tmp_path: Path, *alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "data_dir": str(tmp_path / "data"),
        "notify": {"allow_private_addresses": True},
        "alert": list(alerts),
    }


def hook(receiver: WebhookReceiver, **extra: Any) -> dict[str, Any]:
    """A webhook subscription that is also told about first records (most tests here start
    from an empty archive)."""
    return {
        "channel": "webhook",
        "target": receiver.url("/hook"),
        "secret": SECRET,
        "first_records": True,
        **extra,
    }


KILL_SCRIPT = """
import json, os, sys
from pathlib import Path
from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import config_from_mapping
from archive.tracking.events import VersionRecorded
from store.git.repository import now_utc
from store.git.versions import CHANGE, NewVersion

raw, stage, text_file = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
archive = Archive.open(config_from_mapping(raw), writer=True, listeners=LISTENERS)
previous = archive.versions.current("WorkOptima", "Privacy Policy")
version = archive.versions.record(NewVersion("WorkOptima", "Privacy Policy",
    Path(text_file).read_text(encoding="utf-8"), now_utc(), kind=CHANGE))
if stage == "after-commit":
    os.kill(os.getpid(), 9)
archive.sync_index()
archive.events.emit(VersionRecorded(version, previous))
if stage == "after-outbox":
    os.kill(os.getpid(), 9)
"""


@pytest.mark.parametrize("stage", ["after-commit", "after-outbox"])
def test_a_writer_killed_before_delivery_delivers_exactly_once_after_restart(
    tmp_path, webhook_receiver, stage
):
    raw = raw_config(tmp_path, hook(webhook_receiver))
    config = config_from_mapping(raw)
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)
        assert deliver_pending(archive).delivered == 1
    text_file = tmp_path / "new.txt"
    text_file.write_text(NEW, encoding="utf-8")
    killed = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, json.dumps(raw), stage, str(text_file)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr
    with Archive.open(config) as reader:
        change = reader.versions.current(SERVICE, TYPE)
        assert change is not None and change.kind == "change"  # committed before the kill
        queued = len(Outbox(reader.state).rows(status="pending"))
        assert queued == (1 if stage == "after-outbox" else 0)
    with Archive.open(
        config, writer=True, listeners=LISTENERS
    ) as archive:  # restart: catch-up, then deliver
        assert deliver_pending(archive).delivered == 1
        assert deliver_pending(archive).delivered == 0
    with Archive.open(
        config, writer=True, listeners=LISTENERS
    ) as archive:  # and once more: nothing new
        assert deliver_pending(archive).delivered == 0
        assert [r.status for r in Outbox(archive.state).rows()] == ["delivered"] * 2
    calls = webhook_receiver.wait_for(2)
    assert len(calls) == 2
    assert calls[1].json()["data"]["version"] == change.id
    assert calls[1].verify(SECRET)


def test_the_same_event_twice_queues_one_alert(make_config, webhook_receiver):
    with Archive.open(
        make_config(alert=[hook(webhook_receiver)]), writer=True, listeners=LISTENERS, create=True
    ) as archive:
        version = record_change(archive, OLD)
        archive.events.emit(VersionRecorded(version, None))
        archive.catch_up()
        assert len(Outbox(archive.state).rows()) == 1


def test_reextract_commits_alert_nobody(make_config, webhook_receiver):
    config = make_config(alert=[hook(webhook_receiver)])
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        first = record_change(archive, OLD)
        reextracted = record_change(
            archive, OLD.replace("Analytics", "Analytics\n"), kind=REEXTRACT
        )
        archive.catch_up()
        assert [r.key for r in Outbox(archive.state).rows()] == [first.id]
        change = record_change(archive, NEW)
        assert deliver_pending(archive).delivered == 2
    data = webhook_receiver.wait_for(2)[1].json()["data"]
    assert (data["version"], data["previous_version"]) == (change.id, reextracted.id)


def test_history_before_the_alerts_and_old_imports_are_not_news(make_config, webhook_receiver):
    with Archive.open(make_config(), writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)
        record_change(archive, NEW)
    config = make_config(alert=[hook(webhook_receiver)])
    with Archive.open(config, writer=True, listeners=LISTENERS) as archive:
        assert Outbox(archive.state).rows() == []
        archive.versions.bulk_import(
            [
                NewVersion("Imported", TYPE, OLD, datetime(2020, 1, 1, tzinfo=UTC)),
                NewVersion("Imported", TYPE, NEW, datetime(2021, 1, 1, tzinfo=UTC)),
            ]
        )
        archive.catch_up()
        assert Outbox(archive.state).rows() == []
        record_change(archive, NEW.replace("Analytics", "Web analytics"))
        assert len(Outbox(archive.state).rows()) == 1


def test_config_alerts_are_kept_in_step_and_an_unsubscribe_sticks(make_config, webhook_receiver):
    email = {"channel": "email", "target": "alice@example.org"}
    with Archive.open(
        make_config(alert=[hook(webhook_receiver), email]),
        writer=True,
        listeners=LISTENERS,
        create=True,
    ) as archive:
        subs = Subscriptions(archive.state)
        hook_sub, email_sub = subs.all()
        assert (hook_sub.origin, hook_sub.status, hook_sub.secret) == ("config", "active", SECRET)
        subs.set_status(email_sub.id, "unsubscribed")
        record_change(archive, OLD)
        assert [r.subscription_id for r in Outbox(archive.state).rows()] == [hook_sub.id]
    with Archive.open(make_config(alert=[email]), writer=True, listeners=LISTENERS) as archive:
        subs = Subscriptions(archive.state)
        assert [(s.id, s.status) for s in subs.all()] == [
            (hook_sub.id, "removed"),
            (email_sub.id, "unsubscribed"),
        ]
        assert [r.status for r in Outbox(archive.state).rows()] == ["cancelled"]
    generated = {"channel": "webhook", "target": webhook_receiver.url("/new")}
    with Archive.open(make_config(alert=[generated]), writer=True, listeners=LISTENERS) as archive:
        [new] = [s for s in Subscriptions(archive.state).all() if s.status == "active"]
        assert new.secret.startswith("whsec_")


def test_a_bad_alert_table_is_a_config_error(make_config):
    from archive.errors import ConfigError

    config = make_config(alert=[{"channel": "email", "target": "not an address"}])
    with pytest.raises(ConfigError, match=r"\[\[alert\]\].*not an email address"):
        Archive.open(config, writer=True, listeners=LISTENERS, create=True)
    config = make_config(
        alert=[{"channel": "webhook", "target": "https://h.example/x", "query": "-cookies"}]
    )
    with pytest.raises(ConfigError, match="no word to look for"):
        Archive.open(config, writer=True, listeners=LISTENERS, create=True)


def test_a_saved_search_fires_when_a_policy_starts_and_stops_matching(
    make_config, webhook_receiver
):
    config = make_config(
        alert=[
            hook(webhook_receiver, query=f'"{PHRASE}"'),
            hook(webhook_receiver, query=f'"{PHRASE}"', service="Other"),
        ]
    )
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)  # does not match: nothing
        matched = record_change(archive, NEW)  # starts matching
        record_change(archive, NEW.replace("Analytics", "Web analytics"))  # still matches: nothing
        unmatched = record_change(archive, OLD)  # stops matching
        record_change(archive, NEW, service="Unrelated")  # a first record that matches: news
        report = deliver_pending(archive)
    assert report.delivered == 3
    calls = webhook_receiver.wait_for(3)
    kinds = [(c.json()["type"], c.json()["data"]["version"]) for c in calls]
    assert kinds[:2] == [("search.matched", matched.id), ("search.unmatched", unmatched.id)]
    assert kinds[2][0] == "search.matched"
    assert all(c.json()["data"]["query"] == f'"{PHRASE}"' for c in calls)
    # as the diff page counts it (one diff engine): "we may sell your personal information"
    assert calls[0].json()["data"]["summary"]["words_added"] == 6


def test_first_records_alert_only_subscriptions_that_ask_for_them(make_config, webhook_receiver):
    asked = hook(webhook_receiver)
    changes_only = {"channel": "webhook", "target": webhook_receiver.url("/changes")}
    with Archive.open(
        make_config(alert=[asked, changes_only]), writer=True, listeners=LISTENERS, create=True
    ) as archive:
        subs = Subscriptions(archive.state)
        first_too, plain = subs.all()
        assert (first_too.first_records, plain.first_records) == (True, False)
        first = record_change(archive, OLD)
        assert [(r.subscription_id, r.key) for r in Outbox(archive.state).rows()] == [
            (first_too.id, first.id)
        ]
        change = record_change(archive, NEW)
        queued = [(r.subscription_id, r.key) for r in Outbox(archive.state).rows()]
        assert queued[1:] == [(first_too.id, change.id), (plain.id, change.id)]
        cli = subs.add("webhook", webhook_receiver.url("/cli"), first_records=True)
        assert cli.first_records and "first records too" in cli.describe()


def test_an_older_subscription_table_gains_the_first_records_column(tmp_path):
    import sqlite3

    from archive.alerts.schema import SCHEMA
    from store.state import State
    from store.state.sqlite import DIALECT

    path = tmp_path / "state.sqlite"
    old_schema = DIALECT.ddl(SCHEMA).replace("    first_records INTEGER NOT NULL DEFAULT 0,\n", "")
    with sqlite3.connect(path) as db:
        db.executescript(old_schema)
        db.execute(
            "INSERT INTO notify_subscription (channel, target, origin, status, created, changed) "
            "VALUES ('webhook', 'https://h.example/x', 'cli', 'active', 'now', 'now')"
        )
    state = State(path)
    try:
        [sub] = Subscriptions(state).all()
        assert sub.first_records is False
        assert "first_records" in state.columns("notify_subscription")
    finally:
        state.close()


def test_ensure_schema_brings_an_older_subscription_table_up_to_date(tmp_path):
    import sqlite3

    from archive.alerts.schema import SCHEMA, ensure_schema
    from store.state import State
    from store.state.sqlite import DIALECT

    path = tmp_path / "state.sqlite"
    old_schema = DIALECT.ddl(SCHEMA).replace("    first_records INTEGER NOT NULL DEFAULT 0,\n", "")
    with sqlite3.connect(path) as db:
        db.executescript(old_schema)
    state = State(path)
    try:

        def columns() -> list[str]:
            return state.columns("notify_subscription")

        assert "first_records" not in columns()
        ensure_schema(state)
        assert columns().count("first_records") == 1
        ensure_schema(state)  # idempotent
        assert columns().count("first_records") == 1
    finally:
        state.close()
