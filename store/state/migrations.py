"""Versioned schemas: each feature lists the steps that bring its tables from one version to
the next, and the state applies the missing ones when the feature opens them.

The version each feature's tables are at is kept in ``schema_version``. Migrating is one
transaction that first takes the dialect's migration lock (SQLite: the write lock that
``BEGIN IMMEDIATE`` already holds; PostgreSQL: an advisory lock), then reads the version again,
so two processes opening the same state at once migrate in turn and the second finds nothing
left to do. Every step is idempotent too (``CREATE TABLE IF NOT EXISTS``, :class:`AddColumn`
only when the column is missing), so a state made before versions were kept, which has some
tables and columns already, is brought up to date without an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from store.state.backend import Connection

VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    feature TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    migrated TEXT NOT NULL
)
"""
_CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class AddColumn:
    """Add ``name`` (declared as ``decl``) to ``table`` unless it has it already."""

    table: str
    name: str
    decl: str


Step = str | AddColumn
"""A schema statement (``{id}`` and ``{real}`` are filled in by the dialect) or a column."""


@dataclass(frozen=True)
class Schema:
    """The tables of one feature: ``versions[n - 1]`` holds the steps to version ``n``."""

    feature: str
    versions: tuple[tuple[Step, ...], ...]

    @property
    def latest(self) -> int:
        return len(self.versions)

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables the steps create, in the order they are created (parents first)."""
        names = (
            _CREATE_TABLE.findall(step)
            for steps in self.versions
            for step in steps
            if isinstance(step, str)
        )
        return tuple(dict.fromkeys(name for found in names for name in found))


def statements(script: str) -> tuple[str, ...]:
    """The statements of a ``;``-separated script (no ``;`` inside them)."""
    return tuple(s.strip() for s in script.split(";") if s.strip())


def columns(db: Connection, table: str) -> list[str]:
    return [r["name"] for r in db.execute(db.dialect.columns_sql, (table,)).fetchall()]


def stored_version(db: Connection, feature: str) -> int:
    row = db.execute("SELECT version FROM schema_version WHERE feature = ?", (feature,)).fetchone()
    return int(row["version"]) if row else 0


def apply(db: Connection, schema: Schema) -> int:
    """Bring ``schema``'s tables to its latest version inside ``db``'s transaction; returns the
    version they were at (the caller checks it is not newer than this release knows)."""
    if db.dialect.migration_lock_sql:
        db.execute(db.dialect.migration_lock_sql)
    db.execute(VERSION_TABLE)
    found = stored_version(db, schema.feature)
    if found >= schema.latest:
        return found
    for steps in schema.versions[found:]:
        for step in steps:
            if isinstance(step, AddColumn):
                if step.name not in columns(db, step.table):
                    decl = db.dialect.ddl(step.decl)
                    db.execute(f"ALTER TABLE {step.table} ADD COLUMN {step.name} {decl}")
            else:
                db.execute(db.dialect.ddl(step))
    db.execute(
        "INSERT INTO schema_version (feature, version, migrated) VALUES (?, ?, ?) "
        "ON CONFLICT(feature) DO UPDATE SET version = excluded.version, "
        "migrated = excluded.migrated",
        (schema.feature, schema.latest, datetime.now(UTC).isoformat(timespec="seconds")),
    )
    return found
