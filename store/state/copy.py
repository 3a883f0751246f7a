"""Copy every feature's tables from one state to another (``migrate-state``): an embedded
state.sqlite moved to PostgreSQL when an archive grows past one machine.

Both states are migrated to the latest schema first, so their tables have the same columns;
the rows are copied parents first (foreign keys hold at every step) inside one transaction of
the target, read inside one transaction of the source (nothing changes under the copy).
Identity sequences are moved past the copied ids, so rows added afterwards get new ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from store.errors import StoreError
from store.state.core import State
from store.state.migrations import Schema

Progress = Callable[[str, int], None]
"""Told each table's name and how many rows were copied, as each ends."""

_BATCH = 1000


class StateNotEmptyError(StoreError):
    """The target state already holds rows; copying would mix two archives' state."""


def copy_state(
    source: State,
    target: State,
    schemas: Sequence[Schema],
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Copy the tables of ``schemas`` from ``source`` to ``target``; returns rows per table.

    Refuses (``StateNotEmptyError``) when the target holds rows already, unless ``force``: then
    the target's rows in those tables are replaced."""
    for schema in schemas:
        source.migrate(schema)
        target.migrate(schema)
    tables = [t for schema in schemas for t in schema.tables]
    held = {t: _count(target, t) for t in tables}
    if any(held.values()) and not force:
        busy = ", ".join(f"{t} ({n} rows)" for t, n in held.items() if n)
        raise StateNotEmptyError(
            f"{target.where} already holds state: {busy}; copy into an empty database, or "
            "pass --force to replace those rows"
        )
    copied: dict[str, int] = {}
    with source.connect() as src, target.connect() as dst:
        for table in reversed(tables):  # children first: foreign keys hold while deleting
            dst.execute(f"DELETE FROM {table}")  # noqa: S608 - names from our schemas
        for table in tables:
            names = [c for c in target.columns(table) if c in set(source.columns(table))]
            cols = ", ".join(names)
            marks = ", ".join("?" for _ in names)
            rows = src.execute(f"SELECT {cols} FROM {table}").fetchall()  # noqa: S608
            insert = f"INSERT INTO {table} ({cols}) VALUES ({marks})"  # noqa: S608
            for start in range(0, len(rows), _BATCH):
                for row in rows[start : start + _BATCH]:
                    dst.execute(insert, tuple(row[c] for c in names))
            if "id" in names and target.dialect.name == "postgresql" and rows:
                dst.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )
            copied[table] = len(rows)
            if progress:
                progress(table, len(rows))
    return copied


def _count(state: State, table: str) -> int:
    return int(state.query(f"SELECT count(*) AS n FROM {table}")[0]["n"])  # noqa: S608
