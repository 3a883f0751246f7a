"""Operational state: last checks, validators, failures, cursors, and the features' tables.

Derived where it can be: losing it costs a refetch of every policy, never a version. Two
backends behind one :class:`State`: SQLite (``state.sqlite`` in the data directory, the
embedded default; stdlib ``sqlite3``, WAL) and PostgreSQL (``[database] url``; psycopg 3 with a
small connection pool), shared by every machine of a distributed archive. Other features
(alerts' outbox, subscriptions, accounts, requests) keep their tables in the same database
through :meth:`State.connect` and :meth:`State.query`, each declaring its versioned
:class:`Schema` and applying it with :meth:`State.migrate`.

Errors that come from the machine rather than from our SQL (a full disk, a read-only or
unreadable data directory, a corrupt file, a lock held too long, a server that cannot be
reached) are raised as :class:`StateError` subclasses whose message names the file (or the
URL without its password), what happened and the fix; the transaction in progress is rolled
back, so nothing is half-written.
"""

from store.state.backend import Connection, Cursor, Dialect, Row
from store.state.core import CORE, SCHEMA, State
from store.state.errors import (
    StateBusyError,
    StateCorruptError,
    StateDiskFullError,
    StateError,
    StateIOError,
    StateReadOnlyError,
    StateUnreachableError,
    StateVersionError,
    redacted,
    state_error,
)
from store.state.migrations import AddColumn, Schema, statements
from store.state.model import PolicyState, Validators

__all__ = [
    "CORE",
    "SCHEMA",
    "AddColumn",
    "Connection",
    "Cursor",
    "Dialect",
    "PolicyState",
    "Row",
    "Schema",
    "State",
    "StateBusyError",
    "StateCorruptError",
    "StateDiskFullError",
    "StateError",
    "StateIOError",
    "StateReadOnlyError",
    "StateUnreachableError",
    "StateVersionError",
    "Validators",
    "redacted",
    "state_error",
    "statements",
]
