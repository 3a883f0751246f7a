"""The audit log: every admin action, who did it, when and what (shown by the admin UI)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from archive.accounts.schema import ensure_schema
from store.state import State

MAX_DETAIL = 2000


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    user: str
    action: str
    detail: str


def record(state: State, user: str, action: str, detail: str) -> None:
    """Append one entry, dated now (UTC)."""
    ensure_schema(state)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    with state.connect() as db:
        db.execute(
            'INSERT INTO account_audit(at, "user", action, detail) VALUES(?, ?, ?, ?)',
            (at, user[:200], action[:200], detail[:MAX_DETAIL]),
        )


def recent(state: State, limit: int = 200, offset: int = 0) -> list[AuditEntry]:
    """The newest entries first, skipping the ``offset`` newest (a page of the log)."""
    ensure_schema(state)
    rows = state.query(
        'SELECT at, "user", action, detail FROM account_audit ORDER BY id DESC LIMIT ? OFFSET ?',
        (limit, offset),
    )
    return [
        AuditEntry(datetime.fromisoformat(r["at"]), r["user"], r["action"], r["detail"])
        for r in rows
    ]
