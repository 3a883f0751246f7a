"""What every state backend offers: a connection with one SQL surface, and its dialect.

Features write their SQL once, in the part of SQL that SQLite (>= 3.35) and PostgreSQL share:
``?`` placeholders, rows read by column name, ``INSERT ... ON CONFLICT DO NOTHING`` or
``DO UPDATE``, ``RETURNING id`` instead of ``lastrowid``. What differs is named by the
:class:`Dialect` rather than rewritten: the type of a numbered id column, of a float column, the
clause that lets claimers of rows pass each other (``FOR UPDATE SKIP LOCKED``), and the queries
that list tables and columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

Params = Sequence[Any]


class Row(Protocol):
    """One result row: ``row["name"]`` (or ``row[0]``), ``row.keys()``."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    """The result of one statement."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


@dataclass(frozen=True)
class Dialect:
    """What differs between the backends' SQL, by name (never found by rewriting SQL)."""

    name: str
    identity: str
    """The column type of an ``id`` the database numbers itself (with PRIMARY KEY)."""
    real: str
    """A double-precision float column (PostgreSQL's REAL is single precision)."""
    skip_locked: str
    """Appended to a SELECT that claims rows for this transaction: other claimers skip them
    (empty where a transaction already holds the whole database, as in SQLite)."""
    tables_sql: str
    """The names (``name``) of the tables, one row each."""
    columns_sql: str
    """The column names (``name``) of the table ``?``, in order."""
    migration_lock_sql: str
    """Taken at the start of a migrating transaction so that two processes migrate in turn."""

    def ddl(self, statement: str) -> str:
        """A schema statement with ``{id}`` and ``{real}`` filled in for this dialect."""
        return statement.format(id=self.identity, real=self.real)


class Connection(Protocol):
    """A connection inside a transaction (see :meth:`store.state.State.connect`)."""

    @property
    def dialect(self) -> Dialect: ...

    def execute(self, sql: str, params: Params = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...


class Backend(Protocol):
    """One place state lives: a file (SQLite) or a database server (PostgreSQL)."""

    @property
    def where(self) -> str:
        """The file, or the URL without its password: the start of every error message."""
        ...

    @property
    def dialect(self) -> Dialect: ...

    def transaction(self) -> AbstractContextManager[Connection]:
        """A connection inside a write transaction: committed when the block ends, rolled back
        if it raises."""
        ...

    def query(self, sql: str, params: Params = ()) -> list[Any]:
        """The rows of one read (inside the calling thread's transaction, if it has one)."""
        ...

    def close(self) -> None: ...
