"""The alerting tables in ``state.sqlite``: subscriptions, the outbox and the delivery log.

Created with ``CREATE TABLE IF NOT EXISTS`` by whoever opens them first (the writer's
:func:`archive.alerts.attach`, or a CLI command adding a subscription), so readers may use them.
A table made by an older release gets the columns added since
(:func:`~archive.alerts.subscriptions.ensure_columns`).
"""

from __future__ import annotations

from archive.alerts.subscriptions import ensure_columns
from store.state import State

SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_subscription (
    id INTEGER PRIMARY KEY,
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
    id INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL UNIQUE,
    subscription_id INTEGER NOT NULL REFERENCES notify_subscription(id),
    event TEXT NOT NULL,
    key TEXT NOT NULL,
    facts TEXT NOT NULL,
    created TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    lease_until REAL,
    last_error TEXT,
    finished TEXT,
    UNIQUE (subscription_id, event, key)
);
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (status, next_attempt);
CREATE TABLE IF NOT EXISTS notify_attempt (
    id INTEGER PRIMARY KEY,
    outbox_id INTEGER NOT NULL REFERENCES notify_outbox(id),
    at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS notify_attempt_outbox ON notify_attempt (outbox_id);
"""


def ensure_schema(state: State) -> None:
    """Create the alerting tables if they do not exist yet, and bring older ones up to date
    (idempotent)."""
    with state.connect() as db:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
    ensure_columns(state)
