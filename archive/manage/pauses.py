"""Paused policies in the state database: still declared, not checked on schedule until resumed.

A flag in state rather than an edit of the declaration: pausing is an operator's decision about
this archive, not about what the document is. ``run`` picks a change up within a second.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from archive.config import PolicyConfig
from store.state import Schema, State

SCHEMA = """
CREATE TABLE IF NOT EXISTS manage_pause (
    service TEXT NOT NULL,
    type TEXT NOT NULL,
    paused_by TEXT NOT NULL,
    paused_at TEXT NOT NULL,
    PRIMARY KEY (service, type)
)
"""
PAUSES = Schema("manage_pause", ((SCHEMA,),))


class Pauses:
    def __init__(self, state: State) -> None:
        self.state = state
        state.migrate(PAUSES)

    def pause(self, service: str, type_: str, user: str) -> None:
        with self.state.connect() as db:
            db.execute(
                "INSERT INTO manage_pause (service, type, paused_by, paused_at) VALUES (?,?,?,?) "
                "ON CONFLICT(service, type) DO NOTHING",
                (service, type_, user, datetime.now(UTC).replace(microsecond=0).isoformat()),
            )

    def resume(self, service: str, type_: str) -> None:
        with self.state.connect() as db:
            db.execute("DELETE FROM manage_pause WHERE service = ? AND type = ?", (service, type_))

    def paused(self) -> frozenset[tuple[str, str]]:
        rows = self.state.query("SELECT service, type FROM manage_pause")
        return frozenset((r["service"], r["type"]) for r in rows)

    def is_paused(self, service: str, type_: str) -> bool:
        return (service, type_) in self.paused()

    def split(
        self, policies: Iterable[PolicyConfig]
    ) -> tuple[list[PolicyConfig], list[PolicyConfig]]:
        """``policies`` as (active, paused): what runs on schedule and what waits."""
        return split(policies, self.paused())


def split(
    policies: Iterable[PolicyConfig], paused: frozenset[tuple[str, str]]
) -> tuple[list[PolicyConfig], list[PolicyConfig]]:
    """``policies`` as (active, paused), given the keys of the paused ones."""
    active: list[PolicyConfig] = []
    waiting: list[PolicyConfig] = []
    for policy in policies:
        (waiting if policy.key in paused else active).append(policy)
    return active, waiting
