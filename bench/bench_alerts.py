"""Delivery throughput: 1,000 queued alerts to a local webhook receiver and to local SMTP.

    .venv/bin/python bench/bench_alerts.py [--alerts 1000]

One change to one policy fans out to N subscriptions (N webhooks, then N email addresses);
the figures are the time to queue the alerts (the listener, in the tracking path) and to deliver
them (one ``deliver_pending`` run), with real loopback servers from tests/.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from archive.alerts import LISTENERS, deliver_pending  # noqa: E402
from archive.app import Archive  # noqa: E402
from archive.config import config_from_mapping  # noqa: E402
from archive.tracking.events import VersionRecorded  # noqa: E402
from store.git.repository import now_utc  # noqa: E402
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion  # noqa: E402
from tests.smtp_server import SmtpServer  # noqa: E402
from tests.webhook_receiver import WebhookReceiver  # noqa: E402

SEED = REPO.parent / "shared" / "fixtures" / "seed-policies" / "workoptima-privacy-policy.txt"


def run(
    channel: str, alerts: list[dict[str, Any]], extra: dict[str, Any], count: int, wait: Any
) -> None:
    text = SEED.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        raw = {
            "data_dir": tmp,
            "notify": {"allow_private_addresses": True},
            "alert": alerts,
            **extra,
        }
        with Archive.open(
            config_from_mapping(raw), writer=True, listeners=LISTENERS, create=True
        ) as archive:
            first = archive.versions.record(
                NewVersion("WorkOptima", "Privacy Policy", text, now_utc(), kind=FIRST_RECORD)
            )
            archive.state.set_meta("notify.cursor", first.id)  # alert the change only
            change = archive.versions.record(
                NewVersion(
                    "WorkOptima",
                    "Privacy Policy",
                    text.replace("never be sold", "be sold"),
                    now_utc(),
                    kind=CHANGE,
                )
            )
            started = time.perf_counter()
            archive.events.emit(VersionRecorded(change, first))
            queued = time.perf_counter() - started
            started = time.perf_counter()
            report = deliver_pending(archive)
            delivered = time.perf_counter() - started
            wait(count)
        assert report.delivered == count, report
        print(
            f"{channel:8} {count:5} alerts: queued in {queued * 1000:7.1f} ms; delivered in "
            f"{delivered:6.2f} s = {count / delivered:7.1f} alerts/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    n = parser.parse_args().alerts
    receiver = WebhookReceiver().start()
    try:
        hooks = [
            {
                "channel": "webhook",
                "target": receiver.url(f"/hook/{i}"),
                "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            }
            for i in range(n)
        ]
        run("webhook", hooks, {}, n, lambda c: receiver.wait_for(c, timeout=60))
    finally:
        receiver.stop()
    smtp = SmtpServer().start()
    try:
        mails = [{"channel": "email", "target": f"reader{i}@example.org"} for i in range(n)]
        settings = {"smtp": {"host": smtp.host, "port": smtp.port, "security": "none"}}
        run("email", mails, settings, n, lambda c: smtp.wait_for(c, timeout=60))
    finally:
        smtp.stop()


if __name__ == "__main__":
    main()
