"""Connections to the primary and its read replicas: searches read from a replica in turn and,
when one fails, from the primary within the same request.

A replica that refuses or drops a connection (stopped, restarting, unreachable) is marked down
for :data:`DOWN_SECONDS` and the search runs again on the primary, so a replica going away
costs a retry, never a failed request. A replica that cancels a search because replaying the
primary's changes conflicts with it (a rebuild swapping tables) is not marked down; the search
is retried on the primary too. Every read is one read-only ``REPEATABLE READ`` transaction, so
all the statements of one search see one state of the index.

Idle connections are kept per server (at most ``readers``); any number of threads may read at
once (PostgreSQL bounds the work, not this process).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict

from store.errors import StoreError
from store.index.query import IndexBusyError, IndexDamagedError, QueryTooBroadError

log = logging.getLogger(__name__)

DOWN_SECONDS = 30.0
CONNECT_TIMEOUT = 3
T = TypeVar("T")

TOO_BROAD = (
    "this query takes too long to answer; add more specific words, use a phrase, "
    "or narrow it with service:, type:, lang: or dates"
)


def where(url: str) -> str:
    """A server's address for messages (no password)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the search database"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


class Server:
    """One PostgreSQL server and its idle connections."""

    def __init__(self, url: str, keep: int) -> None:
        self.url = url
        self.keep = max(keep, 1)
        self.down_until = 0.0
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return where(self.url)

    def get(self) -> psycopg.Connection:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is not None and not conn.closed:
            return conn
        return psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT, autocommit=True)

    def put(self, conn: psycopg.Connection) -> None:
        if conn.closed or conn.broken or conn.info.transaction_status.name != "IDLE":
            conn.close()
            return
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        conn = self.get()
        try:
            yield conn
        finally:
            self.put(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _failed_server(exc: psycopg.Error) -> bool:
    """Whether ``exc`` says the server or the connection failed (not the query)."""
    if isinstance(exc, errors.QueryCanceled):
        return False
    return isinstance(exc, psycopg.OperationalError) or bool(
        exc.sqlstate and exc.sqlstate.startswith(("08", "57P"))
    )


class Servers:
    """The primary (writes, and reads when no replica answers) and the replicas (reads)."""

    def __init__(self, url: str, replicas: tuple[str, ...], readers: int) -> None:
        if not url:
            raise StoreError(
                "the postgresql search engine needs a database: set [database] url "
                "(or [search] url) in config.toml"
            )
        self.primary = Server(url, readers)
        self.replicas = [Server(u, readers) for u in replicas]
        self._turn = itertools.count()

    def _replica(self) -> Server | None:
        """The next replica in turn that is not marked down."""
        now = time.monotonic()
        up = [r for r in self.replicas if r.down_until <= now]
        return up[next(self._turn) % len(up)] if up else None

    def read(self, work: Callable[[psycopg.Connection], T], timeout: float) -> T:
        """``work(conn)`` in a read-only repeatable-read transaction on a replica (in turn),
        else on the primary; each statement may take ``timeout`` seconds."""
        replica = self._replica()
        if replica is not None:
            try:
                return self._read_on(replica, work, timeout)
            except errors.SerializationFailure as exc:  # a conflict with recovery
                log.info(
                    "replica %s cancelled a search (%s): retried on the primary",
                    replica.name,
                    exc.sqlstate,
                )
            except psycopg.Error as exc:
                if not _failed_server(exc):
                    raise self._translated(exc, replica) from None
                replica.down_until = time.monotonic() + DOWN_SECONDS
                log.warning(
                    "search replica %s failed (%s); reading from the primary for %d s",
                    replica.name,
                    " ".join(str(exc).split())[:120],
                    DOWN_SECONDS,
                )
        try:
            return self._read_on(self.primary, work, timeout)
        except psycopg.Error as exc:
            raise self._translated(exc, self.primary) from None

    def _read_on(
        self, server: Server, work: Callable[[psycopg.Connection], T], timeout: float
    ) -> T:
        with server.connection() as conn:
            try:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                conn.execute(f"SET LOCAL statement_timeout = {max(int(timeout * 1000), 1)}")
                result = work(conn)
                conn.execute("COMMIT")
                return result
            except BaseException:
                if not conn.broken and not conn.closed:
                    conn.execute("ROLLBACK")
                raise

    def _translated(self, exc: psycopg.Error, server: Server) -> StoreError:
        """The domain error for a failed read."""
        if isinstance(exc, errors.QueryCanceled):
            return QueryTooBroadError(TOO_BROAD)
        detail = " ".join(str(exc).split())[:160]
        if _failed_server(exc):
            return IndexBusyError(
                f"the search database at {server.name} is not answering ({detail}); "
                "try again in a few seconds"
            )
        if exc.sqlstate and exc.sqlstate.startswith("XX"):
            return IndexDamagedError(
                f"the search index in the database at {server.name} cannot be read "
                f"({detail}); rebuild it with `policy-archive reindex`"
            )
        return StoreError(f"searching the database at {server.name} failed: {detail}")

    @contextmanager
    def writing(self) -> Iterator[psycopg.Connection]:
        """A connection of its own to the primary for a writer (autocommit: it opens its
        transactions with ``conn.transaction()``)."""
        try:
            conn = psycopg.connect(
                self.primary.url, connect_timeout=CONNECT_TIMEOUT, autocommit=True
            )
        except psycopg.OperationalError as exc:
            raise StoreError(
                f"cannot connect to the search database at {self.primary.name}: "
                f"{' '.join(str(exc).split())[:160]}"
            ) from None
        try:
            yield conn
        finally:
            conn.close()

    def close(self) -> None:
        self.primary.close()
        for replica in self.replicas:
            replica.close()
