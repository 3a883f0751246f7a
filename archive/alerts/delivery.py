"""Delivering the outbox: claim due alerts, send them, log each attempt, schedule retries.

A failed attempt is retried after ``retry_base × 2^(attempt-1)`` seconds with equal jitter
(half fixed, half random), or after the receiver's ``Retry-After``; after
``[notify] max_attempts`` attempts, or at once for a permanent error, the alert is marked
failed and reported. A failing receiver never raises out of here: tracking goes on.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING

from archive.alerts import content
from archive.alerts.apprise_sender import AppriseSender
from archive.alerts.content import AlertContent, ContentBuilder
from archive.alerts.emails import alert_email, confirm_email
from archive.alerts.errors import DeliveryError, HeaderInjectionError, NotifyError
from archive.alerts.outbox import Outbox, OutboxRow, alert_id
from archive.alerts.smtp import SmtpSender
from archive.alerts.subscriptions import ACTIVE, DISABLED, PENDING, Subscription, Subscriptions
from archive.alerts.tokens import CONFIRM, UNSUBSCRIBE, make_token, secret_key
from archive.alerts.webhooks import WebhookSender, notify_client
from store.errors import StoreError

if TYPE_CHECKING:
    from archive.app import Archive

log = logging.getLogger(__name__)

BATCH = 50
MAX_BACKOFF = 6 * 3600.0
WEBHOOK_TEST = "webhook_test"
"""The event of a test POST an operator sends to a webhook (``"type": "webhook.test"``)."""


@dataclass
class DeliveryReport:
    """What one delivery run did (alerts counted one by one, a digest counts its alerts)."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    deferred: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{self.delivered} delivered", f"{self.retried} to retry", f"{self.failed} failed"]
        if self.cancelled:
            parts.append(f"{self.cancelled} cancelled")
        if self.deferred:
            parts.append(f"{self.deferred} left for later")
        return ", ".join(parts)


def backoff(attempt: int, base: float, rng: Callable[[], float] = random.random) -> float:
    """Delay before attempt ``attempt + 1``: exponential, capped, with equal jitter."""
    delay = min(base * 2 ** max(attempt - 1, 0), MAX_BACKOFF)
    return delay / 2 + rng() * delay / 2


def _domain(sender: str) -> str:
    return sender.rpartition("@")[2].strip("> ") or "policy-archive.invalid"


class Deliverer:
    """One delivery run's senders (SMTP connection, the guarded HTTP client's pools for
    webhooks and Apprise); close it after use."""

    def __init__(self, archive: Archive, *, rng: Callable[[], float] = random.random) -> None:
        self.archive = archive
        self.config = archive.config
        self.outbox = Outbox(archive.state)
        self.subscriptions = Subscriptions(archive.state)
        self.content = ContentBuilder(archive)
        self.rng = rng
        self.http = notify_client(self.config.notify)
        self.webhooks = WebhookSender(self.config.notify, self.http)
        self.apprise = AppriseSender(
            self.config.notify,
            self.http,
            allow_unguarded=self.config.notify.allow_unguarded_apprise,
        )
        self._smtp: SmtpSender | None = None
        self._key: bytes | None = None
        self._offset = 0.0
        self.lease = BATCH * max(self.config.notify.webhook_timeout, self.config.smtp.timeout) + 60

    # ------------------------------------------------------------------ the run

    def run(self, *, until: float | None = None, now: float | None = None) -> DeliveryReport:
        report = DeliveryReport()
        start = time.time() if now is None else now
        self._offset = start - time.time()  # a ``now`` in the future shifts the whole run
        handled: set[int] = set()
        while True:
            rows = self.outbox.claim_due(start, limit=BATCH, lease=self.lease)
            if not rows:
                return report
            for i, row in enumerate(rows):
                if row.id in handled:
                    continue
                if until is not None and time.monotonic() > until:
                    rest = [r for r in rows[i:] if r.id not in handled]
                    self.outbox.release(rest)
                    report.deferred += len(rest)
                    return report
                group = self._group(row, rows, handled, start)
                handled.update(r.id for r in group)
                self._deliver(group, report)

    def run_one(self, outbox_id: int, *, now: float | None = None) -> DeliveryReport:
        """Deliver one alert if it is due (with the rest of its digest), as a run would."""
        report = DeliveryReport()
        start = time.time() if now is None else now
        self._offset = start - time.time()
        rows = self.outbox.claim(outbox_id, start, lease=self.lease)
        for row in rows:
            self._deliver(self._group(row, rows, set(), start), report)
        return report

    def _group(
        self, row: OutboxRow, batch: Sequence[OutboxRow], handled: set[int], now: float
    ) -> list[OutboxRow]:
        """The row, or the whole due digest of its subscription."""
        sub = self.subscriptions.get(row.subscription_id)
        if sub is None or not sub.digest or row.event == content.CONFIRM:
            return [row]
        same = [
            r
            for r in batch
            if r.subscription_id == sub.id and r.id not in handled and r.event != content.CONFIRM
        ]
        return same + self.outbox.claim_digest(sub.id, now, self.lease)

    def _deliver(self, group: list[OutboxRow], report: DeliveryReport) -> None:
        sub = self.subscriptions.get(group[0].subscription_id)
        confirming = group[0].event == content.CONFIRM
        if sub is None or not (sub.status == ACTIVE or (confirming and sub.status == PENDING)):
            why = f"subscription is {sub.status if sub else 'deleted'}"
            self.outbox.finish(group, outcome="cancelled", now=self._now(), error=why)
            report.cancelled += len(group)
            return
        try:
            alerts = [self.content.build(r.alert_id, r.event, r.facts, r.created) for r in group]
            status = self._send(sub, alerts)
        except DeliveryError as exc:
            self._failed(sub, group, exc, report)
        except (HeaderInjectionError, StoreError) as exc:
            self._failed(sub, group, DeliveryError(str(exc), transient=False), report)
        else:
            self.outbox.finish(group, outcome="delivered", now=self._now(), status=status)
            report.delivered += len(group)

    def _failed(
        self,
        sub: Subscription,
        group: list[OutboxRow],
        exc: DeliveryError,
        report: DeliveryReport,
    ) -> None:
        attempts = max(r.attempts for r in group) + 1
        now = self._now()
        max_attempts = self.config.notify.max_attempts
        if exc.transient and not exc.disable and attempts < max_attempts:
            wait = exc.retry_after
            if wait is None:
                wait = backoff(attempts, self.config.notify.retry_base, self.rng)
            self.outbox.finish(
                group,
                outcome="retry",
                now=now,
                status=exc.status,
                error=exc.reason,
                next_attempt=now + max(wait, 0.001),
            )
            report.retried += len(group)
            log.info(
                "alert to %s failed (attempt %d, retry in %.0f s): %s",
                sub.target,
                attempts,
                wait,
                exc.reason,
            )
            return
        self.outbox.finish(group, outcome="failed", now=now, status=exc.status, error=exc.reason)
        if exc.disable:
            self.subscriptions.set_status(sub.id, DISABLED, note=exc.reason)
        report.failed += len(group)
        message = (
            f"subscription #{sub.id} ({sub.channel} {sub.target}): gave up after "
            f"{attempts} attempt(s): {exc.reason}"
        )
        report.errors.append(message)
        log.warning("%s", message)

    def _now(self) -> float:
        return time.time() + self._offset

    # ------------------------------------------------------------------ channels

    def _send(self, sub: Subscription, alerts: list[AlertContent]) -> int | None:
        if sub.channel == "webhook":
            return self.webhooks.send(sub.target, sub.secret, alerts[0])
        if sub.channel == "apprise":
            self.apprise.send(sub.target, alerts[0])
            return None
        sender = self.config.smtp.sender
        links = self.content.links
        if alerts[0].event == content.CONFIRM:
            token = make_token(self.key, CONFIRM, sub.id)
            message = confirm_email(
                alerts[0],
                sub=sub,
                sender=sender,
                confirm_url=links.confirm(token),
                domain=_domain(sender),
            )
        else:
            token = make_token(self.key, UNSUBSCRIBE, sub.id)
            message = alert_email(
                alerts,
                sub=sub,
                sender=sender,
                unsubscribe_url=links.unsubscribe(token),
                domain=_domain(sender),
            )
        if self._smtp is None:
            self._smtp = SmtpSender(self.config.smtp)
        self._smtp.send(message)
        return None

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = secret_key(self.config)
        return self._key

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        self.http.close()
        if self._smtp is not None:
            self._smtp.close()

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def deliver_pending(
    archive: Archive, *, until: float | None = None, now: float | None = None
) -> DeliveryReport:
    """Deliver every alert due now; never raises for a failing receiver.

    ``until``: a :func:`time.monotonic` deadline after which no new attempt starts (the rest
    stays queued). ``now``: the time (Unix seconds) that decides what is due; default the clock.
    """
    with Deliverer(archive) as deliverer:
        return deliverer.run(until=until, now=now)


def deliver_one(archive: Archive, outbox_id: int) -> DeliveryReport:
    """Deliver one alert now if it is due (after :meth:`Outbox.retry_now`); the writer's
    shortcut past the worker's wait. Never raises for a failing receiver."""
    with Deliverer(archive) as deliverer:
        return deliverer.run_one(outbox_id)


def webhook_test_alert(sub: Subscription, now: float) -> AlertContent:
    """A test event for a webhook: signed like an alert, queued nowhere, a new id each time."""
    return AlertContent(
        alert_id=alert_id(sub.id, WEBHOOK_TEST, str(time.time_ns())),
        event=WEBHOOK_TEST,
        facts={
            "subscription": sub.id,
            "message": "A test event from Policy Archive: deliveries to this endpoint work.",
        },
        created=datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
    )


def send_webhook_test(archive: Archive, sub: Subscription) -> int:
    """POST a signed test event to a webhook subscription now, whatever its status.

    Returns the receiver's HTTP status; raises :class:`DeliveryError` (with ``status`` when
    the receiver answered) if it failed, :class:`NotifyError` for a non-webhook subscription.
    Nothing is queued or logged in the outbox: a test is not an alert.
    """
    if sub.channel != "webhook":
        raise NotifyError(f"subscription #{sub.id} is a {sub.channel} subscription, not a webhook")
    with Deliverer(archive) as deliverer:
        return deliverer.webhooks.send(sub.target, sub.secret, webhook_test_alert(sub, time.time()))
