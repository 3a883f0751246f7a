"""State in ``state.sqlite`` (stdlib ``sqlite3``): the embedded default, one machine.

One connection in WAL mode guarded by a lock; a write transaction is ``BEGIN IMMEDIATE``, so
it holds the database's one write lock from its first statement (writers take turns, readers
go on). Machine-made SQLite errors are raised as :class:`~store.state.errors.StateError`
subclasses after the rollback, so nothing is half-written.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from store.state.backend import Cursor, Dialect, Params, Row
from store.state.errors import state_error

DIALECT = Dialect(
    name="sqlite",
    identity="INTEGER PRIMARY KEY",
    real="REAL",
    skip_locked="",
    tables_sql="SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
    columns_sql="SELECT name FROM pragma_table_info(?) ORDER BY cid",
    migration_lock_sql="",
)


class SQLiteConnection:
    """The connection inside a transaction, with the shared SQL surface."""

    dialect = DIALECT

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        return self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self._db.executemany(sql, rows)


class SQLiteBackend:
    """Thread-safe access to one SQLite file (WAL mode; one connection guarded by a lock)."""

    dialect = DIALECT

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
        except BaseException:
            self._db.close()
            raise
        self._connection = SQLiteConnection(self._db)

    @property
    def where(self) -> str:
        return str(self.path)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Raise machine-made SQLite (and file system) errors as StateError."""
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
    def transaction(self) -> Iterator[SQLiteConnection]:
        with self._lock, self._translated():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
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

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        with self._lock, self._translated():
            return self._db.execute(sql, params).fetchall()
