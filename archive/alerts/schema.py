"""The alerting tables in the state database: subscriptions, the outbox and the delivery log.

Versioned (:data:`ALERTS`) and brought up to date by whoever opens them first (the writer's
:func:`archive.alerts.attach`, a CLI command adding a subscription, or a reader), so readers
may use them. A table made by an older release gets the columns added since.
"""

from __future__ import annotations

from store.state import AddColumn, Schema, State, statements

SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_subscription (
    id {id},
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    service TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL DEFAULT '',
    query TEXT NOT NULL DEFAULT '',
    secret TEXT NOT NULL DEFAULT '',
    digest INTEGER NOT NULL DEFAULT 0,
    first_records INTEGER NOT NULL DEFAULT 0,
    origin TEXT NOT NULL,
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    changed TEXT NOT NULL,
    note TEXT,
    UNIQUE (channel, target, service, type, query)
);
CREATE TABLE IF NOT EXISTS notify_outbox (
    id {id},
    alert_id TEXT NOT NULL UNIQUE,
    subscription_id BIGINT NOT NULL REFERENCES notify_subscription(id),
    event TEXT NOT NULL,
    key TEXT NOT NULL,
    facts TEXT NOT NULL,
    created TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt {real} NOT NULL,
    lease_until {real},
    last_error TEXT,
    finished TEXT,
    UNIQUE (subscription_id, event, key)
);
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (status, next_attempt);
CREATE TABLE IF NOT EXISTS notify_attempt (
    id {id},
    outbox_id BIGINT NOT NULL REFERENCES notify_outbox(id),
    at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS notify_attempt_outbox ON notify_attempt (outbox_id);
"""


ALERTS = Schema(
    "alerts",
    (
        statements(SCHEMA),
        # whether a policy's first record alerts too (tables made before it lack the column)
        (AddColumn("notify_subscription", "first_records", "INTEGER NOT NULL DEFAULT 0"),),
    ),
)


def ensure_schema(state: State) -> None:
    """Create the alerting tables if they do not exist yet, and bring older ones up to date
    (idempotent; a read once they are)."""
    state.migrate(ALERTS)
