"""The state every feature shares: policy state and cursors here, the features' own tables
through :meth:`State.connect` / :meth:`State.query` and :meth:`State.migrate`.

``State(path)`` keeps state in the SQLite file ``path`` (the embedded default);
``State(path, url)`` in the PostgreSQL database of ``url`` (shared by several machines; ``path``
is then unused). Both speak the same SQL (see :mod:`store.state.backend`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from store.state import migrations
from store.state.backend import Backend, Connection, Dialect, Params, Row
from store.state.errors import StateVersionError
from store.state.migrations import AddColumn, Schema
from store.state.model import PolicyState, Validators

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
CORE = Schema(
    "state",
    (
        migrations.statements(SCHEMA),
        # when the current run of failed checks began
        (AddColumn("policy_state", "failing_since", "TEXT"),),
    ),
)
"""``policy_state`` (one row per policy) and ``meta`` (cursors, cached summaries)."""


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _backend(path: Path, url: str) -> Backend:
    if url:
        from store.state.postgresql import PostgresBackend

        return PostgresBackend(url)
    from store.state.sqlite import SQLiteBackend

    return SQLiteBackend(path)


class State:
    """Thread-safe access to the operational state, in SQLite or PostgreSQL."""

    def __init__(self, path: Path, url: str = "") -> None:
        self.path = Path(path)
        self.url = url
        self._backend = _backend(self.path, url)
        self._migrated: set[str] = set()
        try:
            self.migrate(CORE)
        except BaseException:
            self._backend.close()
            raise

    @property
    def where(self) -> str:
        """The file, or the database URL without its password (as error messages name it)."""
        return self._backend.where

    @property
    def dialect(self) -> Dialect:
        return self._backend.dialect

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection inside a write transaction (committed on success, rolled back on error).

        A machine-made error inside the block (or at the commit) is raised as a
        :class:`~store.state.errors.StateError` after the rollback.
        """
        with self._backend.transaction() as db:
            yield db

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """The rows of one read (rows read by column name: ``row["id"]``)."""
        return self._backend.query(sql, params)

    # ------------------------------------------------------------------ schema

    def tables(self) -> list[str]:
        return [r["name"] for r in self.query(self.dialect.tables_sql)]

    def has_table(self, name: str) -> bool:
        """Whether the table exists (a read: takes no write lock)."""
        return name in self.tables()

    def columns(self, table: str) -> list[str]:
        """The table's column names, in order ([] if there is no such table)."""
        return [r["name"] for r in self.query(self.dialect.columns_sql, (table,))]

    def migrate(self, schema: Schema) -> None:
        """Bring a feature's tables to their latest version (once per opened State; a read
        when they are up to date already)."""
        if schema.feature in self._migrated:
            return
        if self._stored_version(schema.feature) < schema.latest:
            with self.connect() as db:
                found = migrations.apply(db, schema)
        else:
            found = self._stored_version(schema.feature)
        if found > schema.latest:
            raise StateVersionError(
                self.where,
                f"holds {schema.feature} tables at version {found}, newer than this release "
                f"knows ({schema.latest})",
                "upgrade policy-archive to the release that wrote them",
            )
        self._migrated.add(schema.feature)

    def _stored_version(self, feature: str) -> int:
        if not self.has_table("schema_version"):
            return 0
        rows = self.query("SELECT version FROM schema_version WHERE feature = ?", (feature,))
        return int(rows[0]["version"]) if rows else 0

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
    def _row(row: Row) -> PolicyState:
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
