"""Webhooks and Apprise through a real HTTP receiver: signatures, retries, 410, 429, SSRF."""

from __future__ import annotations

import time

import pytest

from archive.alerts import LISTENERS, deliver_pending
from archive.alerts.outbox import Outbox
from archive.alerts.subscriptions import Subscriptions
from archive.app import Archive
from archive.tracking.events import PolicyFailing, PolicyRecovered
from tests.conftest import seed_text
from tests.support import record_change
from tests.webhook_receiver import WebhookReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BASE = "https://archive.example"
SERVICE, TYPE = "WorkOptima", "Privacy Policy"
OLD = seed_text("workoptima-privacy-policy.txt")
NEW = OLD.replace("will never be sold to", "may be sold to")


def hook(receiver: WebhookReceiver, **extra: object) -> dict[str, object]:
    return {
        "channel": "webhook",
        "target": receiver.url("/hook"),
        "secret": SECRET,
        "first_records": True,
        **extra,
    }


def test_a_change_is_posted_as_signed_json(make_config, webhook_receiver):
    config = make_config(web={"base_url": BASE}, alert=[hook(webhook_receiver)])
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        v1 = record_change(archive, OLD)
        v2 = record_change(archive, NEW)
        assert deliver_pending(archive).delivered == 2
    first, change = webhook_receiver.wait_for(2)
    assert first.verify(SECRET) and change.verify(SECRET)
    assert not change.verify("whsec_" + SECRET[6:].swapcase())
    assert change.headers["content-type"] == "application/json"
    assert change.headers["webhook-id"].startswith("msg_")
    assert first.headers["webhook-id"] != change.headers["webhook-id"]
    body = change.json()
    assert body["type"] == "version.recorded"
    data = body["data"]
    assert (data["service"], data["type"], data["kind"]) == (SERVICE, TYPE, "change")
    assert (data["version"], data["previous_version"]) == (v2.id, v1.id)
    assert data["date"] == v2.date.isoformat()
    assert data["previous_date"] == v1.date.isoformat()
    assert data["summary"] == {
        "sections": [],
        "words_added": 1,
        "words_removed": 2,
        "formatting_changes": 0,
        "excerpts": [
            {
                "section": "",
                "before": "your information will never be sold",
                "after": "your information may be sold",
            }
        ],
        "passages": 1,
        "first_record": False,
    }
    policy = f"{BASE}/policies/WorkOptima/Privacy%20Policy"
    assert data["urls"] == {
        "policy": policy,
        "diff": f"{policy}/diff?from={v1.id}&to={v2.id}",
        "version": f"{policy}?version={v2.id}",
        "raw": f"{BASE}/api/policies/WorkOptima/Privacy%20Policy?version={v2.id}",
        "source": "https://workoptima.example/privacy",
    }
    assert first.json()["data"]["summary"]["first_record"] is True


def test_a_receiver_failing_twice_gets_the_alert_once_with_the_same_id(
    make_config, webhook_receiver
):
    webhook_receiver.script(500, 503)
    config = make_config(alert=[hook(webhook_receiver)], notify={"retry_base": 5})
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)
        outbox = Outbox(archive.state)
        assert deliver_pending(archive).retried == 1
        for _ in range(2):
            [row] = outbox.rows()
            assert deliver_pending(archive, now=row.next_attempt - 0.5).delivered == 0
            deliver_pending(archive, now=row.next_attempt)
        [row] = outbox.rows()
        log = [a["outcome"] for a in outbox.attempts(row.id)]
    calls = webhook_receiver.wait_for(3)
    assert [c.answered for c in calls] == [500, 503, 204]
    assert len({c.headers["webhook-id"] for c in calls}) == 1
    assert len({c.body for c in calls}) == 1  # the same body; only the timestamp is new
    assert all(c.verify(SECRET) for c in calls)
    assert (row.status, row.attempts) == ("delivered", 3)
    assert log == ["retry", "retry", "delivered"]


def test_a_receiver_that_always_fails_is_retried_on_schedule_then_reported(
    make_config, webhook_receiver
):
    webhook_receiver.default = (500, {})
    base = 10.0
    config = make_config(
        alert=[hook(webhook_receiver)], notify={"retry_base": base, "max_attempts": 4}
    )
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)
        outbox = Outbox(archive.state)
        waits, now = [], time.time()
        report = deliver_pending(archive, now=now)
        for _ in range(3):
            [row] = outbox.rows()
            waits.append(row.next_attempt - now)
            now = row.next_attempt
            report = deliver_pending(archive, now=now)
        [row] = outbox.rows()
        attempts = outbox.attempts(row.id)
    for n, wait in enumerate(waits):  # equal jitter: between half and all of base × 2^n
        assert base * 2**n / 2 <= wait <= base * 2**n + 1
    assert report.failed == 1 and "gave up after 4 attempt(s)" in report.errors[0]
    assert "HTTP 500" in report.errors[0]
    assert (row.status, row.attempts) == ("failed", 4)
    assert [a["outcome"] for a in attempts] == ["retry"] * 3 + ["failed"]
    assert [a["status"] for a in attempts] == [500] * 4
    assert len(webhook_receiver.calls) == 4


def test_retry_after_is_honoured(make_config, webhook_receiver):
    webhook_receiver.script((429, {"Retry-After": "120"}), (503, {"Retry-After": "7"}))
    config = make_config(alert=[hook(webhook_receiver)], notify={"retry_base": 1})
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)
        outbox = Outbox(archive.state)
        before = time.time()
        deliver_pending(archive)
        [row] = outbox.rows()
        assert 119 <= row.next_attempt - before <= 122
        then = row.next_attempt
        deliver_pending(archive, now=then)
        [row] = outbox.rows()
        assert 7 <= row.next_attempt - then <= 8
        assert deliver_pending(archive, now=row.next_attempt).delivered == 1


def test_410_disables_the_endpoint(make_config, webhook_receiver):
    webhook_receiver.script(410)
    config = make_config(alert=[hook(webhook_receiver)])
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)
        report = deliver_pending(archive)
        record_change(archive, NEW)
        assert deliver_pending(archive).delivered == 0
        [sub] = Subscriptions(archive.state).all()
        statuses = [r.status for r in Outbox(archive.state).rows()]
    assert report.failed == 1 and "410" in report.errors[0]
    assert sub.status == "disabled" and "410" in (sub.note or "")
    assert statuses == ["failed"]  # the later change was never queued for it
    assert len(webhook_receiver.calls) == 1


def test_redirects_are_not_followed(make_config, webhook_receiver):
    webhook_receiver.script((302, {"Location": webhook_receiver.url("/elsewhere")}))
    config = make_config(alert=[hook(webhook_receiver)])
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)
        report = deliver_pending(archive)
    assert report.failed == 1 and "redirects are not followed" in report.errors[0]
    assert [c.path for c in webhook_receiver.calls] == ["/hook"]


def test_internal_addresses_are_refused_unless_allowed(make_config, webhook_receiver):
    config = make_config(
        alert=[
            hook(webhook_receiver),
            {
                "channel": "apprise",
                "target": f"json://127.0.0.1:{webhook_receiver.port}/apprise",
                "first_records": True,
            },
        ],
        notify={"allow_private_addresses": False},
    )
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)
        report = deliver_pending(archive)
    assert report.failed == 2 and report.retried == 0
    assert all("loopback" in e for e in report.errors)
    assert webhook_receiver.calls == []


def test_a_slow_receiver_times_out_and_never_holds_up_tracking(make_config, webhook_receiver):
    webhook_receiver.delay = 2.0
    config = make_config(alert=[hook(webhook_receiver)], notify={"webhook_timeout": 0.3})
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        started = time.monotonic()
        record_change(archive, OLD)  # commit + event + outbox: no network
        assert time.monotonic() - started < 1.5
        started = time.monotonic()
        report = deliver_pending(archive)
        assert time.monotonic() - started < 1.5
    assert report.retried == 1


def test_apprise_urls_are_a_third_channel(make_config, webhook_receiver):
    config = make_config(
        web={"base_url": BASE},
        alert=[
            {
                "channel": "apprise",
                "target": f"json://127.0.0.1:{webhook_receiver.port}/apprise",
                "first_records": True,
            }
        ],
    )
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)
        record_change(archive, NEW)
        assert deliver_pending(archive).delivered == 2
    _, change = webhook_receiver.wait_for(2)
    assert change.path == "/apprise"
    message = change.json()
    assert message["title"] == "Change to WorkOptima Privacy Policy"
    assert "+1 / -2 words" in message["message"]
    assert "{+may+}" in message["message"] and "/diff?from=" in message["message"]


def test_failing_and_recovered_policies_alert_the_operators_channels_only(
    make_config, webhook_receiver
):
    config = make_config(alert=[hook(webhook_receiver, service=SERVICE)])
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        Subscriptions(archive.state).add("webhook", webhook_receiver.url("/cli"))
        archive.events.emit(PolicyFailing(SERVICE, TYPE, 3, "HTTP 503 from the site", True))
        archive.events.emit(PolicyFailing("Other", TYPE, 3, "HTTP 404", False))
        archive.events.emit(PolicyRecovered(SERVICE, TYPE, 5))
        assert deliver_pending(archive).delivered == 2
    failing, recovered = webhook_receiver.wait_for(2)
    assert {failing.path, recovered.path} == {"/hook"}
    assert failing.json()["type"] == "policy.failing"
    assert failing.json()["data"] | {"date": None} == {
        "service": SERVICE,
        "type": TYPE,
        "failures": 3,
        "reason": "HTTP 503 from the site",
        "transient": True,
        "date": None,
        "urls": {"policy": "http://127.0.0.1:8000/policies/WorkOptima/Privacy%20Policy"},
    }
    assert recovered.json()["type"] == "policy.recovered"


@pytest.mark.parametrize("status", [400, 404, 502])
def test_other_error_statuses_are_retried(make_config, webhook_receiver, status):
    webhook_receiver.script(status)
    config = make_config(alert=[hook(webhook_receiver)])
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)
        assert deliver_pending(archive).retried == 1
        [row] = Outbox(archive.state).rows()
        assert deliver_pending(archive, now=row.next_attempt).delivered == 1


def test_the_worker_delivers_in_the_background_and_retries_when_due(make_config, webhook_receiver):
    from archive.alerts import Worker

    webhook_receiver.script(503)
    config = make_config(alert=[hook(webhook_receiver)], notify={"retry_base": 0.2})
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        worker = Worker(archive, interval=30)
        worker.start()
        try:
            record_change(archive, OLD)  # the event wakes the worker; no 30 s wait
            calls = webhook_receiver.wait_for(2, timeout=10)
        finally:
            worker.stop()
        [row] = Outbox(archive.state).rows()
    assert [c.answered for c in calls] == [503, 204]
    assert (row.status, row.attempts) == ("delivered", 2)


def test_a_flapping_page_tells_the_operators_channels_once_with_the_lines(
    make_config, webhook_receiver
):
    config = make_config(
        web={"base_url": BASE},
        alert=[
            {"channel": "webhook", "target": webhook_receiver.url("/ops"), "secret": SECRET},
            {"channel": "apprise", "target": f"json://127.0.0.1:{webhook_receiver.port}/apprise"},
        ],
    )
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        Subscriptions(archive.state).add("webhook", webhook_receiver.url("/cli"))
        v1, v2, v3, _ = (record_change(archive, text) for text in (OLD, NEW, OLD, NEW))
        assert deliver_pending(archive).delivered == 5  # 3 × the first flip, 2 notices
    calls = webhook_receiver.wait_for(5)
    by_path: dict[str, list[dict]] = {}
    for call in calls:
        by_path.setdefault(call.path, []).append(call.json())
    assert [c["type"] for c in by_path["/cli"]] == ["version.recorded"]  # not an operator
    change, notice = sorted(by_path["/ops"], key=lambda c: c["type"] != "version.recorded")
    assert change["data"]["version"] == v2.id
    assert notice["type"] == "policy.flapping"
    data = notice["data"]
    assert (data["version"], data["previous"], data["returned_to"]) == (v3.id, v2.id, v1.id)
    [removed], [added] = data["lines_removed"], data["lines_added"]
    assert removed.startswith("Except as outlined in this Policy, your information may be sold")
    assert added.startswith("Except as outlined in this Policy, your information will never be")
    assert removed.endswith("…") and len(removed) == 300  # a long line is cut
    policy = f"{BASE}/policies/WorkOptima/Privacy%20Policy"
    assert data["urls"] == {
        "policy": policy,
        "diff": f"{policy}/diff?from={v2.id}&to={v3.id}",
        "version": f"{policy}?version={v3.id}",
    }

    chat = [c for c in by_path["/apprise"] if "flaps" in c["title"]]
    assert len(chat) == 1 and len(by_path["/apprise"]) == 2
    assert chat[0]["title"] == "WorkOptima Privacy Policy flaps between two texts: alerts held"
    message = chat[0]["message"]
    assert "alerts for this policy are held (lines removed: 1, lines added: 1)" in message
    assert "- Except as outlined in this Policy, your information may be sold" in message
    assert "+ Except as outlined in this Policy, your information will never be" in message
    assert "`ignore` pattern or a `remove` selector" in message and "docs/noise.md" in message
    assert f"{policy}/diff?from={v2.id}&to={v3.id}" in message
