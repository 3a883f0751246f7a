"""State errors that come from the machine rather than from our SQL, with the fix in the message.

A full disk, a read-only or unreadable data directory, a corrupt file, a lock held too long, a
database server that cannot be reached: each is a :class:`StateError` subclass whose message
names where the state is (the file, or the database URL without its password), what happened
and what to do. A bug in our SQL is never dressed up as one of them: it keeps its own exception.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from store.errors import StoreError


class StateError(StoreError):
    """The state could not be used; the message names where it is and the fix."""

    def __init__(self, path: Path | str, what: str, fix: str, detail: str = "") -> None:
        self.path = path
        self.what = what
        self.fix = fix
        super().__init__(f"{path}: {what}{f' ({detail})' if detail else ''}; {fix}")


class StateDiskFullError(StateError):
    """The disk holding the data directory (or the database) is full."""


class StateReadOnlyError(StateError):
    """The data directory or the database cannot be written (read-only, no permission)."""


class StateCorruptError(StateError):
    """The file is not an SQLite database, or its pages are damaged."""


class StateBusyError(StateError):
    """Another process held a lock on the database for longer than the busy timeout."""


class StateIOError(StateError):
    """The operating system reported an I/O error reading or writing the database."""


class StateUnreachableError(StateError):
    """The database server refused the connection, or could not be reached at all."""


class StateVersionError(StateError):
    """The state was written by a newer release of Policy Archive than this one."""


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


def redacted(url: str) -> str:
    """``url`` without its password (``postgresql://user:***@host/db``), for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}{f':{parts.port}' if parts.port else ''}"
    return urlunsplit(parts._replace(netloc=netloc))


_UNREACHABLE_FIX = (
    "start the database server (`scripts/services start` on this machine), or correct "
    "[database] url in config.toml (postgresql://user:password@host:port/dbname)"
)

# SQLSTATE classes and codes (https://www.postgresql.org/docs/15/errcodes-appendix.html).
_PG_CONNECTION, _PG_AUTH, _PG_RESOURCES, _PG_OPERATOR = "08", "28", "53", "57"
_PG_NO_DATABASE, _PG_READ_ONLY, _PG_DISK_FULL = "3D000", "25006", "53100"
_PG_DEADLOCK, _PG_LOCK_TIMEOUT, _PG_CORRUPT = "40P01", "55P03", "XX001"


def postgres_error(url: str, sqlstate: str | None, detail: str) -> StateError | None:
    """The :class:`StateError` for a PostgreSQL error with ``sqlstate`` (None: the connection
    failed before the server answered) if the server or the network caused it; None for a bug
    in our SQL."""
    where = redacted(url)
    detail = " ".join(detail.split())
    code = sqlstate or ""
    if not code or code[:2] in (_PG_CONNECTION, _PG_AUTH, _PG_OPERATOR) or code == _PG_NO_DATABASE:
        return StateUnreachableError(
            where, "cannot connect to PostgreSQL", _UNREACHABLE_FIX, detail
        )
    if code == _PG_DISK_FULL:
        fix = "free space on the database server's disk, then run the command again"
        return StateDiskFullError(where, "the database server's disk is full", fix, detail)
    if code == _PG_READ_ONLY:
        fix = "point [database] url at the primary server, not a read replica"
        return StateReadOnlyError(where, "cannot be written (a read-only server)", fix, detail)
    if code in (_PG_DEADLOCK, _PG_LOCK_TIMEOUT):
        fix = "run the command again (another process held the rows it needed)"
        return StateBusyError(where, "is locked by another process", fix, detail)
    if code[:2] == _PG_RESOURCES:
        fix = "give the database server more resources (connections, memory), then try again"
        return StateBusyError(where, "is out of resources", fix, detail)
    if code == _PG_CORRUPT:
        fix = "restore the database from a backup (versions are safe in git)"
        return StateCorruptError(where, "has damaged data", fix, detail)
    return None
