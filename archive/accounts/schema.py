"""The account tables in ``state.sqlite``, created by whoever opens them first (idempotent)."""

from __future__ import annotations

from store.state import State

SCHEMA = """
CREATE TABLE IF NOT EXISTS account_user (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password TEXT NOT NULL,
    created TEXT NOT NULL,
    changed TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS account_session (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES account_user(id) ON DELETE CASCADE,
    created REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS account_session_user ON account_session (user_id);
CREATE TABLE IF NOT EXISTS account_token (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    last_used TEXT
);
CREATE TABLE IF NOT EXISTS account_login (
    name TEXT PRIMARY KEY,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS account_audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    user TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""

_READY = "_accounts_schema_ready"


def ensure_schema(state: State) -> None:
    """Create the account tables if they do not exist yet (once per opened State)."""
    if getattr(state, _READY, False):
        return
    with state.connect() as db:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
    setattr(state, _READY, True)
