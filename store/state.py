"""Operational state in SQLite (stdlib ``sqlite3``): last checks, validators, failures, cursors.

Derived where it can be: losing it costs a refetch of every policy, never a version. Other
features (alerts' outbox, subscriptions) keep their tables in the same database through
:meth:`State.connect`, each creating its own tables.

SQLite errors that come from the machine rather than from our SQL (a full disk, a read-only or
unreadable data directory, a corrupt file, a lock held too long) are raised as
:class:`StateError` subclasses whose message names the file, what happened and the fix; the
transaction in progress is rolled back, so nothing is half-written.
"""

from __future__ import annotations

import errno
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from store.errors import StoreError

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
ADDED_COLUMNS = {"failing_since": "TEXT"}
"""``policy_state`` columns newer than its first release, added to an older table on open
(``failing_since``: when the current run of failed checks began)."""


class StateError(StoreError):
    """``state.sqlite`` could not be used; the message names the file and the fix."""

    def __init__(self, path: Path, what: str, fix: str, detail: str = "") -> None:
        self.path = path
        self.what = what
        self.fix = fix
        super().__init__(f"{path}: {what}{f' ({detail})' if detail else ''}; {fix}")


class StateDiskFullError(StateError):
    """The disk holding the data directory is full."""


class StateReadOnlyError(StateError):
    """The data directory or the database file cannot be written (read-only, no permission)."""


class StateCorruptError(StateError):
    """The file is not an SQLite database, or its pages are damaged."""


class StateBusyError(StateError):
    """Another process held a lock on the database for longer than the busy timeout."""


class StateIOError(StateError):
    """The operating system reported an I/O error reading or writing the database."""


# SQLite primary result codes (https://www.sqlite.org/rescode.html).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_NOTADB, _SQLITE_AUTH = 26, 23

_FREE_SPACE = "free space on the disk that holds the data directory, then run the command again"
_WRITABLE = (
    "make the data directory and the file writable by this user (or mount it read-write), "
    "then run the command again"
)


def state_error(path: Path, exc: sqlite3.Error | OSError) -> StateError | None:
    """The :class:`StateError` for ``exc`` if the machine caused it; None for a bug in our SQL."""
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StateDiskFullError(path, "the disk is full", _FREE_SPACE, exc.strerror or "")
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            what = "cannot be created or written"
            return StateReadOnlyError(path, what, _WRITABLE, exc.strerror or "")
        return None
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    detail = str(exc)
    if code == _SQLITE_FULL:
        return StateDiskFullError(path, "the disk is full", _FREE_SPACE, detail)
    if code in (_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_AUTH):
        return StateReadOnlyError(path, "cannot be written", _WRITABLE, detail)
    if code == _SQLITE_CANTOPEN:
        return StateReadOnlyError(path, "cannot be opened", _WRITABLE, detail)
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StateCorruptError(
            path,
            "is not a valid SQLite database (corrupt or overwritten)",
            f"restore it from a backup, or move it aside (mv '{path}' '{path}.corrupt') and run "
            "`policy-archive check` to rebuild it: versions are safe in git, but subscriptions "
            "and pending alerts kept in it are lost",
            detail,
        )
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StateBusyError(
            path,
            "is locked by another process",
            "wait for the other policy-archive command to finish (or stop it), then try again",
            detail,
        )
    if code == _SQLITE_IOERR:
        return StateIOError(
            path,
            "could not be read or written (disk I/O error)",
            "check that the disk has free space and is healthy, then run the command again",
            detail,
        )
    return None


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
    failing_since: datetime | None = None

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
        self._lock = threading.RLock()
        with self._translated():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, timeout=30, isolation_level=None
            )
        try:
            with self._translated():
                self._db.row_factory = sqlite3.Row
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA busy_timeout=30000")
                self._db.executescript(SCHEMA)
                self._add_columns()
        except BaseException:
            self._db.close()
            raise

    def _add_columns(self) -> None:
        """Add :data:`ADDED_COLUMNS` missing from an older ``policy_state`` table."""
        have = {r["name"] for r in self._db.execute("PRAGMA table_info(policy_state)")}
        for name, decl in ADDED_COLUMNS.items():
            if name not in have:
                with suppress(sqlite3.OperationalError):  # another process just added it
                    self._db.execute(f"ALTER TABLE policy_state ADD COLUMN {name} {decl}")

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Raise machine-made SQLite (and file system) errors as :class:`StateError`."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            error = state_error(self.path, exc)
            if error is None:
                raise
            raise error from exc

    def close(self) -> None:
        with self._lock, self._translated():
            self._db.close()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """The connection, inside a transaction (committed on success, rolled back on error).

        A machine-made SQLite error inside the block (or at the commit) is raised as a
        :class:`StateError` after the rollback.
        """
        with self._lock, self._translated():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        """Roll back what is left of the transaction (SQLite may already have done it)."""
        if not self._db.in_transaction:
            return
        # If even the rollback fails, the error being raised says what went wrong, and
        # SQLite rolls the journal back when the database is next opened.
        with suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock, self._translated():
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
            failing_since=_dt(row["failing_since"]),
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
                       last_error_transient, suspect_hash, suspect_since, failing_since)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(service, type) DO UPDATE SET
                       last_check=excluded.last_check, last_success=excluded.last_success,
                       last_change=excluded.last_change, validators=excluded.validators,
                       body_hash=excluded.body_hash, text_hash=excluded.text_hash,
                       failures=excluded.failures, last_error=excluded.last_error,
                       last_error_transient=excluded.last_error_transient,
                       suspect_hash=excluded.suspect_hash, suspect_since=excluded.suspect_since,
                       failing_since=excluded.failing_since
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
                    _iso(st.failing_since),
                ),
            )
