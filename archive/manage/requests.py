"""Check requests in the state database: "check this policy now" or "re-extract it", asked by the
admin UI and carried out by the writer.

The web UI may be a reader (``serve``) while another process (``run``) holds the writer lock,
so it does not check policies itself: it adds a request, and whichever process is the writer
claims it (``run``'s pickup thread within a second, or the UI itself when it can take the free
writer lock), runs it and writes the outcome back, which the page polls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from store.state import Row, Schema, State, statements

CHECK, FIRST_CHECK, REEXTRACT = "check", "first_check", "reextract"
KINDS = (CHECK, FIRST_CHECK, REEXTRACT)
CHECKS = (CHECK, FIRST_CHECK)
"""FIRST_CHECK: the check of a policy just added (``run`` may check it on schedule meanwhile)."""
PENDING, RUNNING, DONE = "pending", "running", "done"

SCHEMA = """
CREATE TABLE IF NOT EXISTS manage_request (
    id {id},
    service TEXT NOT NULL,
    type TEXT NOT NULL,
    kind TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    outcome TEXT,
    reason TEXT,
    version TEXT,
    previous TEXT
);
CREATE INDEX IF NOT EXISTS manage_request_status ON manage_request (status, id);
"""
REQUESTS = Schema("manage_request", (statements(SCHEMA),))


@dataclass(frozen=True)
class Request:
    id: int
    service: str
    type: str
    kind: str
    requested_by: str
    requested_at: datetime
    status: str
    outcome: str | None = None  # the check's status (first_record, changed, failed…)
    reason: str | None = None
    version: str | None = None  # the version recorded, if any
    previous: str | None = None  # the version before it (for the diff)
    finished_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.status == DONE


@dataclass(frozen=True)
class Outcome:
    outcome: str
    reason: str | None = None
    version: str | None = None
    previous: str | None = None


def has_table(state: State, name: str) -> bool:
    """Whether the table exists (a read: pages that only look take no write lock)."""
    return state.has_table(name)


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _request(row: Row) -> Request:
    return Request(
        id=row["id"],
        service=row["service"],
        type=row["type"],
        kind=row["kind"],
        requested_by=row["requested_by"],
        requested_at=datetime.fromisoformat(row["requested_at"]),
        status=row["status"],
        outcome=row["outcome"],
        reason=row["reason"],
        version=row["version"],
        previous=row["previous"],
        finished_at=datetime.fromisoformat(row["finished_at"]) if row["finished_at"] else None,
    )


class Requests:
    """The request table of one state database."""

    def __init__(self, state: State) -> None:
        self.state = state
        state.migrate(REQUESTS)

    def add(self, service: str, type_: str, kind: str, user: str) -> int:
        if kind not in KINDS:
            raise ValueError(f"unknown request kind {kind!r}")
        with self.state.connect() as db:
            added = db.execute(
                "INSERT INTO manage_request (service, type, kind, requested_by, requested_at, "
                "status) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (service, type_, kind, user, _now(), PENDING),
            ).fetchone()
            return int(added["id"])

    def get(self, request_id: int) -> Request | None:
        rows = self.state.query("SELECT * FROM manage_request WHERE id = ?", (request_id,))
        return _request(rows[0]) if rows else None

    def recent(self, service: str, type_: str, limit: int = 10) -> list[Request]:
        rows = self.state.query(
            "SELECT * FROM manage_request WHERE service = ? AND type = ? ORDER BY id DESC LIMIT ?",
            (service, type_, limit),
        )
        return [_request(r) for r in rows]

    def pending(self) -> list[Request]:
        rows = self.state.query(
            "SELECT * FROM manage_request WHERE status = ? ORDER BY id", (PENDING,)
        )
        return [_request(r) for r in rows]

    def claim(self, request_id: int) -> bool:
        """Mark a pending request running; False if someone else claimed it first."""
        with self.state.connect() as db:
            cursor = db.execute(
                "UPDATE manage_request SET status = ?, started_at = ? WHERE id = ? AND status = ?",
                (RUNNING, _now(), request_id, PENDING),
            )
            return cursor.rowcount == 1

    def finish(self, request_id: int, outcome: Outcome) -> None:
        with self.state.connect() as db:
            db.execute(
                "UPDATE manage_request SET status = ?, finished_at = ?, outcome = ?, reason = ?, "
                "version = ?, previous = ? WHERE id = ?",
                (
                    DONE,
                    _now(),
                    outcome.outcome,
                    outcome.reason,
                    outcome.version,
                    outcome.previous,
                    request_id,
                ),
            )

    def cancel(self, request_id: int) -> None:
        """Forget a request that was never claimed (its edit was not saved)."""
        with self.state.connect() as db:
            db.execute(
                "DELETE FROM manage_request WHERE id = ? AND status = ?", (request_id, PENDING)
            )

    def requeue_running(self) -> int:
        """Requests a writer that stopped was running: pending again (a new writer runs them)."""
        with self.state.connect() as db:
            cursor = db.execute(
                "UPDATE manage_request SET status = ?, started_at = NULL WHERE status = ?",
                (PENDING, RUNNING),
            )
            return cursor.rowcount
