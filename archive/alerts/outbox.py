"""The outbox: every alert to send, written once, delivered until done, with a delivery log.

Rows are unique on (subscription, event, key) — the key is the version id for change alerts —
so queuing the same alert twice (the live listener, then a catch-up after a crash) keeps one.
A delivery claims its rows with a lease (``sending``; on PostgreSQL the claiming SELECT skips
rows another worker is claiming at that moment, ``FOR UPDATE SKIP LOCKED``, so two workers
never claim the same row); a process that dies while sending leaves
rows whose lease runs out and that are picked up again (at-least-once; the webhook id stays the
same so receivers can drop a duplicate). Each attempt is logged in ``notify_attempt``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from store.state import Connection, Row, State

PENDING, SENDING, DELIVERED, FAILED, CANCELLED = (
    "pending",
    "sending",
    "delivered",
    "failed",
    "cancelled",
)
DIGEST_PERIOD = 86400.0

# Claims read the rows they take with the dialect's skip_locked clause appended.
_DUE = (
    "SELECT * FROM notify_outbox WHERE (status = 'pending' AND next_attempt <= ?) "
    "OR (status = 'sending' AND lease_until < ?) ORDER BY next_attempt, id LIMIT ?"
)
_DUE_DIGEST = (
    "SELECT * FROM notify_outbox WHERE subscription_id = ? AND status = 'pending' "
    "AND next_attempt <= ? AND event != 'confirm' ORDER BY id"
)
_DUE_ONE = "SELECT * FROM notify_outbox WHERE id = ? AND status = 'pending' AND next_attempt <= ?"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def alert_id(subscription_id: int, event: str, key: str) -> str:
    """A stable message id (``msg_…``): the same for an alert however often it is queued."""
    digest = hashlib.sha256(f"{subscription_id}\0{event}\0{key}".encode()).hexdigest()
    return "msg_" + digest[:32]


@dataclass(frozen=True)
class NewAlert:
    subscription_id: int
    event: str
    key: str
    facts: dict[str, Any]
    digest: bool = False


@dataclass(frozen=True)
class OutboxRow:
    id: int
    alert_id: str
    subscription_id: int
    event: str
    key: str
    facts: str
    created: str
    status: str
    attempts: int
    next_attempt: float
    last_error: str | None


def _row(row: Row) -> OutboxRow:
    return OutboxRow(
        id=row["id"],
        alert_id=row["alert_id"],
        subscription_id=row["subscription_id"],
        event=row["event"],
        key=row["key"],
        facts=row["facts"],
        created=row["created"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt=row["next_attempt"],
        last_error=row["last_error"],
    )


def move_cursor(db: Connection, key: str, expected: str | None, value: str) -> bool:
    """Set the ``meta`` cursor ``key`` to ``value`` if it holds ``expected`` (None: unset), in
    one statement, so two writers racing cannot both move it; returns whether it moved."""
    if expected is None:
        cur = db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) "
            "DO UPDATE SET value = excluded.value WHERE meta.value IS NULL",
            (key, value),
        )
    else:
        cur = db.execute(
            "UPDATE meta SET value = ? WHERE key = ? AND value = ?", (value, key, expected)
        )
    return cur.rowcount == 1


class Outbox:
    def __init__(self, state: State) -> None:
        self.state = state

    # ------------------------------------------------------------------ queuing

    def enqueue(
        self,
        alerts: Iterable[NewAlert],
        *,
        now: float,
        cursor: tuple[str, str | None, str] | None = None,
    ) -> int:
        """Queue alerts in one transaction; returns how many were new.

        ``cursor`` = (meta key, expected value, new value): moved in the same transaction, and
        only if nobody moved it meanwhile. Digest alerts are due with their subscription's
        pending digest, or one digest period from now.
        """
        added = 0
        with self.state.connect() as db:
            for alert in alerts:
                due = now
                if alert.digest:
                    row = db.execute(
                        "SELECT MIN(next_attempt) AS due FROM notify_outbox WHERE "
                        "subscription_id = ? AND status = 'pending' AND event != 'confirm'",
                        (alert.subscription_id,),
                    ).fetchone()
                    due = row["due"] if row["due"] is not None else now + DIGEST_PERIOD
                cur = db.execute(
                    "INSERT INTO notify_outbox (alert_id, subscription_id, event, key, facts, "
                    "created, status, next_attempt) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (
                        alert_id(alert.subscription_id, alert.event, alert.key),
                        alert.subscription_id,
                        alert.event,
                        alert.key,
                        json.dumps(alert.facts, sort_keys=True, ensure_ascii=False),
                        _iso(now),
                        PENDING,
                        due,
                    ),
                )
                added += cur.rowcount
            if cursor is not None:
                move_cursor(db, *cursor)
        return added

    def queue_confirmation(self, subscription_id: int, *, now: float) -> None:
        """Queue the double opt-in email of a new email subscription (a new one each time
        it is asked for: the address owner may have lost the last one)."""
        key = f"confirm-{time.time_ns()}"
        facts = {"subscription": subscription_id}
        confirm = NewAlert(subscription_id, "confirm", key, facts)  # content.CONFIRM
        self.enqueue([confirm], now=now)

    # ------------------------------------------------------------------ delivering

    def claim_due(self, now: float, *, limit: int, lease: float) -> list[OutboxRow]:
        """Claim up to ``limit`` rows due at ``now`` (and rows whose lease ran out)."""
        with self.state.connect() as db:
            rows = db.execute(
                _DUE + db.dialect.skip_locked,
                (now, now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE notify_outbox SET status = 'sending', lease_until = ? WHERE id = ?",
                [(now + lease, r["id"]) for r in rows],
            )
        return [_row(r) for r in rows]

    def claim_digest(self, subscription_id: int, now: float, lease: float) -> list[OutboxRow]:
        """Claim the rest of a subscription's due digest (rows not yet claimed)."""
        with self.state.connect() as db:
            rows = db.execute(
                _DUE_DIGEST + db.dialect.skip_locked,
                (subscription_id, now),
            ).fetchall()
            db.executemany(
                "UPDATE notify_outbox SET status = 'sending', lease_until = ? WHERE id = ?",
                [(now + lease, r["id"]) for r in rows],
            )
        return [_row(r) for r in rows]

    def release(self, rows: Iterable[OutboxRow]) -> None:
        """Give back claimed rows not attempted (the caller ran out of time)."""
        with self.state.connect() as db:
            db.executemany(
                "UPDATE notify_outbox SET status = 'pending', lease_until = NULL "
                "WHERE id = ? AND status = 'sending'",
                [(r.id,) for r in rows],
            )

    def reset_leases(self) -> int:
        """At writer start: rows a dead process was sending become due again."""
        with self.state.connect() as db:
            cur = db.execute(
                "UPDATE notify_outbox SET status = 'pending', lease_until = NULL "
                "WHERE status = 'sending'"
            )
        return cur.rowcount

    def finish(
        self,
        rows: Iterable[OutboxRow],
        *,
        outcome: str,
        now: float,
        status: int | None = None,
        error: str | None = None,
        next_attempt: float | None = None,
    ) -> None:
        """Log one attempt of ``rows`` and set their state.

        ``outcome``: ``delivered``, ``retry`` (due again at ``next_attempt``), ``failed`` or
        ``cancelled``.
        """
        new_status = {
            "delivered": DELIVERED,
            "retry": PENDING,
            "failed": FAILED,
            "cancelled": CANCELLED,
        }[outcome]
        rows = list(rows)
        attempted = outcome != "cancelled"
        with self.state.connect() as db:
            for row in rows:
                db.execute(
                    "UPDATE notify_outbox SET status = ?, attempts = attempts + ?, "
                    "next_attempt = COALESCE(?, next_attempt), lease_until = NULL, "
                    "last_error = ?, finished = ? WHERE id = ?",
                    (
                        new_status,
                        int(attempted),
                        next_attempt,
                        error,
                        None if new_status == PENDING else _iso(now),
                        row.id,
                    ),
                )
                db.execute(
                    "INSERT INTO notify_attempt (outbox_id, at, outcome, status, error) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (row.id, _iso(now), outcome, status, error),
                )

    def retry_now(self, outbox_id: int, now: float) -> bool:
        """Make a pending or failed alert due at ``now`` (an operator's "retry now").

        The next delivery run sends it (one more attempt, logged like any other); returns
        False if there is no such alert or it is delivered, cancelled or being sent.
        """
        with self.state.connect() as db:
            cur = db.execute(
                "UPDATE notify_outbox SET status = 'pending', next_attempt = ?, "
                "lease_until = NULL, finished = NULL WHERE id = ? AND status IN (?, ?)",
                (now, outbox_id, PENDING, FAILED),
            )
        return cur.rowcount == 1

    def claim(self, outbox_id: int, now: float, *, lease: float) -> list[OutboxRow]:
        """Claim one alert if it is due at ``now`` (``[]`` if not: sent, or claimed already)."""
        with self.state.connect() as db:
            rows = db.execute(
                _DUE_ONE + db.dialect.skip_locked,
                (outbox_id, now),
            ).fetchall()
            db.executemany(
                "UPDATE notify_outbox SET status = 'sending', lease_until = ? WHERE id = ?",
                [(now + lease, r["id"]) for r in rows],
            )
        return [_row(r) for r in rows]

    # ------------------------------------------------------------------ reading

    def get(self, outbox_id: int) -> OutboxRow | None:
        rows = self.state.query("SELECT * FROM notify_outbox WHERE id = ?", (outbox_id,))
        return _row(rows[0]) if rows else None

    def recent(
        self, *, limit: int, offset: int = 0, status: str | None = None
    ) -> list[tuple[OutboxRow, int | None]]:
        """A page of alerts, newest first, each with the status code of its last attempt."""
        rows = self.state.query(
            "SELECT o.*, (SELECT a.status FROM notify_attempt a WHERE a.outbox_id = o.id "
            "ORDER BY a.id DESC LIMIT 1) AS last_status FROM notify_outbox o "
            "WHERE (? IS NULL OR o.status = ?) ORDER BY o.id DESC LIMIT ? OFFSET ?",
            (status, status, limit, offset),
        )
        return [(_row(r), r["last_status"]) for r in rows]

    def total(self, status: str | None = None) -> int:
        """How many alerts (in ``status``, if given) the outbox holds."""
        if status:
            rows = self.state.query(
                "SELECT COUNT(*) AS n FROM notify_outbox WHERE status = ?", (status,)
            )
        else:
            rows = self.state.query("SELECT COUNT(*) AS n FROM notify_outbox")
        return int(rows[0]["n"])

    def rows(
        self, *, status: str | None = None, subscription_id: int | None = None
    ) -> list[OutboxRow]:
        sql, params = "SELECT * FROM notify_outbox WHERE 1 = 1", list[str | int]()
        if status is not None:
            sql, params = sql + " AND status = ?", [*params, status]
        if subscription_id is not None:
            sql, params = sql + " AND subscription_id = ?", [*params, subscription_id]
        return [_row(r) for r in self.state.query(sql + " ORDER BY id", tuple(params))]

    def attempts(self, outbox_id: int) -> list[Row]:
        """The delivery log of one alert: at, outcome, status, error."""
        return self.state.query(
            "SELECT at, outcome, status, error FROM notify_attempt WHERE outbox_id = ? ORDER BY id",
            (outbox_id,),
        )

    def counts(self) -> dict[int, dict[str, int]]:
        """Per subscription: number of alerts in each status."""
        out: dict[int, dict[str, int]] = {}
        for r in self.state.query(
            "SELECT subscription_id, status, COUNT(*) AS n FROM notify_outbox "
            "GROUP BY subscription_id, status"
        ):
            out.setdefault(r["subscription_id"], {})[r["status"]] = r["n"]
        return out
