"""Operational state in SQLite (stdlib ``sqlite3``): last checks, validators, failures, cursors.

Derived where it can be: losing it costs a refetch of every policy, never a version. Other
features (alerts' outbox, subscriptions) keep their tables in the same database through
:meth:`State.connect`, each creating its own tables.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS policy_state (
    service TEXT NOT NULL,
    type TEXT NOT NULL,
    last_check TEXT,
    last_success TEXT,
    last_change TEXT,
    validators TEXT NOT NULL DEFAULT '[]',
    body_hash TEXT,
    text_hash TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_transient INTEGER,
    suspect_hash TEXT,
    suspect_since TEXT,
    PRIMARY KEY (service, type)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


@dataclass(frozen=True)
class Validators:
    """Conditional-GET validators of one source URL."""

    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class PolicyState:
    service: str
    type: str
    last_check: datetime | None = None
    last_success: datetime | None = None
    last_change: datetime | None = None
    validators: tuple[Validators, ...] = field(default=())
    body_hash: str | None = None
    text_hash: str | None = None
    failures: int = 0
    last_error: str | None = None
    last_error_transient: bool | None = None
    suspect_hash: str | None = None
    suspect_since: datetime | None = None

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def validator_for(self, url: str) -> Validators | None:
        return next((v for v in self.validators if v.url == url), None)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class State:
    """Thread-safe access to ``state.sqlite`` (WAL mode; one connection guarded by a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, timeout=30, isolation_level=None
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """The connection, inside a transaction (committed on success, rolled back on error)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # ------------------------------------------------------------------ meta (cursors)

    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str | None) -> None:
        with self.connect() as db:
            db.execute(
                "INSERT INTO meta(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # ------------------------------------------------------------------ policy state

    @staticmethod
    def _row(row: sqlite3.Row) -> PolicyState:
        validators = tuple(Validators(**v) for v in json.loads(row["validators"] or "[]"))
        return PolicyState(
            service=row["service"],
            type=row["type"],
            last_check=_dt(row["last_check"]),
            last_success=_dt(row["last_success"]),
            last_change=_dt(row["last_change"]),
            validators=validators,
            body_hash=row["body_hash"],
            text_hash=row["text_hash"],
            failures=row["failures"],
            last_error=row["last_error"],
            last_error_transient=None
            if row["last_error_transient"] is None
            else bool(row["last_error_transient"]),
            suspect_hash=row["suspect_hash"],
            suspect_since=_dt(row["suspect_since"]),
        )

    def get(self, service: str, type_: str) -> PolicyState:
        rows = self.query(
            "SELECT * FROM policy_state WHERE service = ? AND type = ?", (service, type_)
        )
        return self._row(rows[0]) if rows else PolicyState(service=service, type=type_)

    def all(self) -> dict[tuple[str, str], PolicyState]:
        return {
            (r["service"], r["type"]): self._row(r)
            for r in self.query("SELECT * FROM policy_state")
        }

    def put(self, st: PolicyState) -> None:
        validators = json.dumps([v.__dict__ for v in st.validators])
        with self.connect() as db:
            db.execute(
                """INSERT INTO policy_state (service, type, last_check, last_success,
                       last_change, validators, body_hash, text_hash, failures, last_error,
                       last_error_transient, suspect_hash, suspect_since)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(service, type) DO UPDATE SET
                       last_check=excluded.last_check, last_success=excluded.last_success,
                       last_change=excluded.last_change, validators=excluded.validators,
                       body_hash=excluded.body_hash, text_hash=excluded.text_hash,
                       failures=excluded.failures, last_error=excluded.last_error,
                       last_error_transient=excluded.last_error_transient,
                       suspect_hash=excluded.suspect_hash, suspect_since=excluded.suspect_since
                """,
                (
                    st.service,
                    st.type,
                    _iso(st.last_check),
                    _iso(st.last_success),
                    _iso(st.last_change),
                    validators,
                    st.body_hash,
                    st.text_hash,
                    st.failures,
                    st.last_error,
                    None if st.last_error_transient is None else int(st.last_error_transient),
                    st.suspect_hash,
                    _iso(st.suspect_since),
                ),
            )
