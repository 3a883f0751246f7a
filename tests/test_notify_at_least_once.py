"""The outbox promise with real processes: an alert is queued exactly once, and a `deliver`
killed while the receiver holds its POST sends it again, with the same webhook-id and body."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from archive.alerts import LISTENERS
from archive.alerts.outbox import Outbox
from archive.app import Archive
from archive.config import load_config
from archive.tracking.events import VersionRecorded
from store.git.repository import now_utc
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion
from tests.conftest import seed_text
from tests.webhook_receiver import WebhookReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SERVICE, TYPE = "WorkOptima", "Privacy Policy"
OLD = seed_text("workoptima-privacy-policy.txt")
NEW = OLD.replace("will never be sold to", "may be sold to")
CLI = Path(sys.executable).with_name("policy-archive")  # the installed console script


def write_config(folder: Path, receiver: WebhookReceiver) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f"""
data_dir = "data"
[notify]
allow_private_addresses = true
webhook_timeout = 60
[[alert]]
channel = "webhook"
target = "{receiver.url("/hook")}"
secret = "{SECRET}"
""",
        encoding="utf-8",
    )
    return path


def queue_a_change(config_path: Path) -> str:
    """Record a first version and a change (which alerts: first records do not)."""
    with Archive.open(
        load_config(config_path), writer=True, listeners=LISTENERS, create=True
    ) as archive:
        for text in (OLD, NEW):
            previous = archive.versions.current(SERVICE, TYPE)
            kind = CHANGE if previous else FIRST_RECORD
            version = archive.versions.record(NewVersion(SERVICE, TYPE, text, now_utc(), kind))
            archive.events.emit(VersionRecorded(version, previous))
        [row] = Outbox(archive.state).rows()
        return row.alert_id


def deliver(config_path: Path) -> str:
    done = subprocess.run(
        [str(CLI), "--config", str(config_path), "deliver"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_a_deliver_killed_mid_post_sends_the_same_alert_again_and_then_never(
    tmp_path, webhook_receiver
):
    config_path = write_config(tmp_path, webhook_receiver)
    alert_id = queue_a_change(config_path)
    webhook_receiver.delay = 30.0  # the POST arrives, the answer does not (timeout is 60 s)
    proc = subprocess.Popen(
        [str(CLI), "--config", str(config_path), "deliver"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        [first] = webhook_receiver.wait_for(1, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed while waiting for the answer
    with Archive.open(load_config(config_path)) as archive:
        [row] = Outbox(archive.state).rows()
    assert (row.status, row.attempts) == ("sending", 0)  # claimed, never finished

    webhook_receiver.delay = 0.0
    assert "1 delivered" in deliver(config_path)
    first, again = webhook_receiver.wait_for(2)
    assert first.headers["webhook-id"] == again.headers["webhook-id"] == alert_id
    assert first.body == again.body  # the same document; only the timestamp is new
    assert first.verify(SECRET) and again.verify(SECRET)
    assert again.json()["type"] == "version.recorded"

    assert "0 delivered, 0 to retry, 0 failed" in deliver(config_path)
    assert len(webhook_receiver.calls) == 2
    with Archive.open(load_config(config_path)) as archive:
        [row] = Outbox(archive.state).rows()
        log = [a["outcome"] for a in Outbox(archive.state).attempts(row.id)]
    assert (row.status, log) == ("delivered", ["delivered"])
