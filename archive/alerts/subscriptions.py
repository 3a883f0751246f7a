"""Subscriptions: who is told about which changes, through which channel.

A subscription follows one policy (service and type), a whole service, or everything; with a
``query`` it is a saved search, told when a policy starts or stops matching. Subscriptions come
from ``[[alert]]`` tables in config.toml (``origin = "config"``, active at once, kept in step by
:func:`sync_config`) or from the CLI (``origin = "cli"``; email ones wait in ``pending`` until
the address owner confirms: double opt-in). A policy's first record alerts only the
subscriptions that ask for it (``first_records``); the others hear of changes only.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from archive.alerts.errors import NotifyError
from archive.config import AlertSettings, NotifySettings, check_url
from archive.errors import FetchError
from archive.fetch.guard import check_url_allowed
from store.state import Row, State

CHANNELS = ("email", "webhook", "apprise")
ACTIVE, PENDING, UNSUBSCRIBED, DISABLED, REMOVED = (
    "active",
    "pending",
    "unsubscribed",
    "disabled",
    "removed",
)
CONFIG, CLI = "config", "cli"
_EMAIL = re.compile(r"^[^\s@<>()\[\],;:\\\"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Subscription:
    id: int
    channel: str
    target: str
    service: str = ""
    type: str = ""
    query: str = ""
    secret: str = ""
    digest: bool = False
    origin: str = CLI
    status: str = ACTIVE
    note: str | None = None
    first_records: bool = False

    @property
    def operator(self) -> bool:
        """Declared by the operator in config.toml: also told about failing policies."""
        return self.origin == CONFIG

    def covers(self, service: str, type_: str) -> bool:
        """Whether changes to (service, type) fall under this subscription's filters."""
        return (not self.service or self.service == service) and (
            not self.type or self.type == type_
        )

    def describe(self) -> str:
        scope = " / ".join(x for x in (self.service, self.type) if x) or "every policy"
        what = f"saved search {self.query!r} in {scope}" if self.query else scope
        extras = ["first records too"] if self.first_records else []
        extras += ["daily digest"] if self.digest else []
        return what + (f" ({', '.join(extras)})" if extras else "")


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def check_target(channel: str, target: str) -> str:
    """Validate a subscription's target for its channel; return it stripped."""
    if channel not in CHANNELS:
        raise NotifyError(f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
    target = target.strip()
    if not target or _CONTROL.search(target):
        raise NotifyError(f"{target!r} is empty or contains control characters")
    if channel == "email" and not _EMAIL.match(target):
        raise NotifyError(f"{target!r} is not an email address (expected name@domain)")
    if channel == "webhook":
        try:
            check_url(target)
        except ValueError as exc:
            raise NotifyError(f"webhook URL: {exc}") from None
    if channel == "apprise":
        from archive.alerts.apprise_sender import load_apprise

        if load_apprise().Apprise.instantiate(target, suppress_exceptions=True) is None:
            raise NotifyError(
                f"{target!r} is not an Apprise URL Apprise understands "
                "(see https://github.com/caronc/apprise/wiki)"
            )
    return target


def check_webhook_address(url: str, settings: NotifySettings) -> None:
    """Refuse a webhook URL the SSRF guard would refuse (an internal address, unless
    ``[notify] allow_private_addresses``) or whose host does not resolve, before it is saved.

    Every delivery checks again (DNS may change); this tells the person adding it at once.
    """
    try:
        check_url_allowed(check_target("webhook", url), settings.allow_private_addresses)
    except FetchError as exc:
        raise NotifyError(f"webhook URL: {exc.reason}") from None


def _row(row: Row) -> Subscription:
    return Subscription(
        id=row["id"],
        channel=row["channel"],
        target=row["target"],
        service=row["service"],
        type=row["type"],
        query=row["query"],
        secret=row["secret"],
        digest=bool(row["digest"]),
        origin=row["origin"],
        status=row["status"],
        note=row["note"],
        first_records=bool(row["first_records"]),
    )


class Subscriptions:
    """The subscription table of one state database."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            from archive.alerts.schema import ensure_schema  # it imports the channels' names

            ensure_schema(self.state)
            self._ready = True

    def all(self) -> list[Subscription]:
        self._ensure()
        return [_row(r) for r in self.state.query("SELECT * FROM notify_subscription ORDER BY id")]

    def get(self, sub_id: int) -> Subscription | None:
        self._ensure()
        rows = self.state.query("SELECT * FROM notify_subscription WHERE id = ?", (sub_id,))
        return _row(rows[0]) if rows else None

    def active(self) -> list[Subscription]:
        return [s for s in self.all() if s.status == ACTIVE]

    def find(
        self, channel: str, target: str, service: str = "", type_: str = "", query: str = ""
    ) -> Subscription | None:
        self._ensure()
        rows = self.state.query(
            "SELECT * FROM notify_subscription WHERE channel = ? AND target = ? AND service = ? "
            "AND type = ? AND query = ?",
            (channel, target, service, type_, query),
        )
        return _row(rows[0]) if rows else None

    def add(
        self,
        channel: str,
        target: str,
        *,
        service: str = "",
        type_: str = "",
        query: str = "",
        secret: str = "",
        digest: bool = False,
        first_records: bool = False,
    ) -> Subscription:
        """Add (or re-activate) a subscription made outside the config.

        Email subscriptions start ``pending`` until confirmed (double opt-in); the caller
        queues the confirmation email. Webhooks get a generated secret unless one is given.
        ``first_records``: also alert when a policy is recorded for the first time.
        """
        self._ensure()
        target = check_target(channel, target)
        service, type_, query = service.strip(), type_.strip(), " ".join(query.split())
        if digest and channel != "email":
            raise NotifyError("--digest applies to email subscriptions only")
        if channel == "webhook" and not secret:
            secret = new_webhook_secret()
        status = PENDING if channel == "email" else ACTIVE
        existing = self.find(channel, target, service, type_, query)
        if existing is not None and existing.status in (ACTIVE, PENDING):
            raise NotifyError(
                f"{target} is already subscribed to {existing.describe()} "
                f"(subscription #{existing.id}, {existing.status})"
            )
        now = _now()
        with self.state.connect() as db:
            if existing is None:
                db.execute(
                    "INSERT INTO notify_subscription (channel, target, service, type, query, "
                    "secret, digest, origin, status, created, changed, first_records) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        channel,
                        target,
                        service,
                        type_,
                        query,
                        secret,
                        int(digest),
                        CLI,
                        status,
                        now,
                        now,
                        int(first_records),
                    ),
                )
            else:
                db.execute(
                    "UPDATE notify_subscription SET secret = ?, digest = ?, status = ?, "
                    "changed = ?, note = NULL, first_records = ? WHERE id = ?",
                    (
                        secret or existing.secret,
                        int(digest),
                        status,
                        now,
                        int(first_records),
                        existing.id,
                    ),
                )
        found = self.find(channel, target, service, type_, query)
        assert found is not None
        return found

    def disable(self, sub_id: int, note: str) -> Subscription:
        """An operator stops an active subscription (its queued alerts are cancelled)."""
        sub = self._existing(sub_id)
        if sub.status != ACTIVE:
            raise NotifyError(f"subscription #{sub.id} is {sub.status}, not active")
        self.set_status(sub.id, DISABLED, note=note)
        return self._existing(sub_id)

    def enable(self, sub_id: int, note: str | None = None) -> Subscription:
        """An operator starts a disabled subscription again (by hand, or after HTTP 410).

        Only ``disabled`` ones: an address that unsubscribed, or has not confirmed yet, is
        never subscribed by someone else's click."""
        sub = self._existing(sub_id)
        if sub.status != DISABLED:
            raise NotifyError(
                f"subscription #{sub.id} is {sub.status}; only a disabled one can be enabled"
            )
        self.set_status(sub.id, ACTIVE, note=note)
        return self._existing(sub_id)

    def _existing(self, sub_id: int) -> Subscription:
        sub = self.get(sub_id)
        if sub is None:
            raise NotifyError(f"there is no subscription #{sub_id}")
        return sub

    def set_status(self, sub_id: int, status: str, note: str | None = None) -> bool:
        """Change a subscription's status; returns False if there is no such subscription."""
        with self.state.connect() as db:
            cur = db.execute(
                "UPDATE notify_subscription SET status = ?, note = ?, changed = ? WHERE id = ?",
                (status, note, _now(), sub_id),
            )
            if status != ACTIVE and status != PENDING:
                db.execute(
                    "UPDATE notify_outbox SET status = 'cancelled', finished = ? "
                    "WHERE subscription_id = ? AND status = 'pending'",
                    (_now(), sub_id),
                )
        return cur.rowcount == 1

    def sync_config(self, alerts: Iterable[AlertSettings]) -> None:
        """Make the ``origin = config`` rows match the ``[[alert]]`` tables.

        New tables become active subscriptions; tables gone from the config are marked
        ``removed``; an address that unsubscribed (or an endpoint disabled by HTTP 410) stays so.
        """
        self._ensure()
        now = _now()
        wanted: set[tuple[str, str, str, str, str]] = set()
        with self.state.connect() as db:
            for alert in alerts:
                target = check_target(alert.channel, alert.target)
                key = (
                    alert.channel,
                    target,
                    alert.service.strip(),
                    alert.type.strip(),
                    " ".join(alert.query.split()),
                )
                wanted.add(key)
                row = db.execute(
                    "SELECT id, status, secret FROM notify_subscription WHERE channel = ? AND "
                    "target = ? AND service = ? AND type = ? AND query = ?",
                    key,
                ).fetchone()
                secret = alert.secret
                first = int(alert.first_records)
                if row is None:
                    if alert.channel == "webhook" and not secret:
                        secret = new_webhook_secret()
                    db.execute(
                        "INSERT INTO notify_subscription (channel, target, service, type, query, "
                        "secret, digest, origin, status, created, changed, first_records) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (*key, secret, int(alert.digest), CONFIG, ACTIVE, now, now, first),
                    )
                    continue
                status = row["status"] if row["status"] in (UNSUBSCRIBED, DISABLED) else ACTIVE
                db.execute(
                    "UPDATE notify_subscription SET secret = ?, digest = ?, origin = ?, "
                    "status = ?, changed = ?, first_records = ? WHERE id = ?",
                    (
                        secret or row["secret"],
                        int(alert.digest),
                        CONFIG,
                        status,
                        now,
                        first,
                        row["id"],
                    ),
                )
            for row in db.execute(
                "SELECT id, channel, target, service, type, query FROM notify_subscription "
                "WHERE origin = ? AND status != ?",
                (CONFIG, REMOVED),
            ).fetchall():
                key = (row["channel"], row["target"], row["service"], row["type"], row["query"])
                if key not in wanted:
                    db.execute(
                        "UPDATE notify_subscription SET status = ?, changed = ? WHERE id = ?",
                        (REMOVED, now, row["id"]),
                    )
                    db.execute(
                        "UPDATE notify_outbox SET status = 'cancelled', finished = ? "
                        "WHERE subscription_id = ? AND status = 'pending'",
                        (now, row["id"]),
                    )
