"""Login throttling per account: after ``FREE_FAILURES`` wrong passwords in a row the account
is locked for ``BASE_LOCK`` seconds, doubling with each further failure up to ``MAX_LOCK``.
While locked every attempt is refused, the right password too; a successful login resets the
count. Each lock is logged at WARNING with the account and the time it ends."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from archive.accounts.schema import ensure_schema
from store.state import State

log = logging.getLogger(__name__)

FREE_FAILURES = 5
BASE_LOCK = 30.0
MAX_LOCK = 3600.0


def lock_seconds(failures: int) -> float:
    """How long the account is locked after ``failures`` wrong passwords in a row."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_LOCK, BASE_LOCK * 2 ** min(failures - FREE_FAILURES, 20))


class LoginThrottle:
    def __init__(self, state: State) -> None:
        ensure_schema(state)
        self.state = state

    def locked_until(self, name: str, *, now: float | None = None) -> float | None:
        """When the account's lock ends, if it is locked now."""
        now = time.time() if now is None else now
        rows = self.state.query("SELECT locked_until FROM account_login WHERE name = ?", (name,))
        if rows and rows[0]["locked_until"] > now:
            return float(rows[0]["locked_until"])
        return None

    def failed(self, name: str, *, now: float | None = None) -> float | None:
        """Count a wrong password; returns the end of the lock it starts, if any."""
        now = time.time() if now is None else now
        with self.state.connect() as db:
            db.execute(
                "INSERT INTO account_login(name, failures) VALUES(?, 1) "
                "ON CONFLICT(name) DO UPDATE SET failures = account_login.failures + 1",
                (name,),
            )
            failures = db.execute(
                "SELECT failures FROM account_login WHERE name = ?", (name,)
            ).fetchone()["failures"]
            seconds = lock_seconds(failures)
            if not seconds:
                return None
            until = now + seconds
            db.execute("UPDATE account_login SET locked_until = ? WHERE name = ?", (until, name))
        log.warning(
            "login: account %r locked until %s after %d wrong passwords in a row",
            name,
            datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds"),
            failures,
        )
        return until

    def succeeded(self, name: str) -> None:
        with self.state.connect() as db:
            db.execute("DELETE FROM account_login WHERE name = ?", (name,))
