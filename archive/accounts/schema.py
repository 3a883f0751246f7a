"""The account tables in the state database, created by whoever opens them first (idempotent)."""

from __future__ import annotations

from store.state import Schema, State, statements

SCHEMA = """
CREATE TABLE IF NOT EXISTS account_user (
    id {id},
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password TEXT NOT NULL,
    created TEXT NOT NULL,
    changed TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS account_session (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES account_user(id) ON DELETE CASCADE,
    created {real} NOT NULL,
    expires {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS account_session_user ON account_session (user_id);
CREATE TABLE IF NOT EXISTS account_token (
    id {id},
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    last_used TEXT
);
CREATE TABLE IF NOT EXISTS account_login (
    name TEXT PRIMARY KEY,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until {real} NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS account_audit (
    id {id},
    at TEXT NOT NULL,
    "user" TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""
"""The tables (``{id}``, ``{real}``: the dialect's id and float column types)."""

ACCOUNTS = Schema("accounts", (statements(SCHEMA),))


def ensure_schema(state: State) -> None:
    """Create the account tables if they do not exist yet (once per opened State)."""
    state.migrate(ACCOUNTS)
