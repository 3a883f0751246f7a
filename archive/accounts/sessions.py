"""Login sessions kept server-side: the browser holds a random id, the table its SHA-256
digest, the user and the expiry. Logging out (or a password change, or removing the user)
deletes the row, so a copied cookie stops working at once."""

from __future__ import annotations

import hashlib
import secrets
import time

from archive.accounts.schema import ensure_schema
from archive.accounts.users import User, _user
from store.state import State


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class Sessions:
    def __init__(self, state: State) -> None:
        ensure_schema(state)
        self.state = state

    def create(self, user: User, hours: float, *, now: float | None = None) -> str:
        """A new session for ``user`` lasting ``hours``; returns its id (given to the browser
        only). Expired sessions are purged on the way."""
        now = time.time() if now is None else now
        session_id = secrets.token_urlsafe(32)
        with self.state.connect() as db:
            db.execute("DELETE FROM account_session WHERE expires <= ?", (now,))
            db.execute(
                "INSERT INTO account_session(id_hash, user_id, created, expires) "
                "VALUES(?, ?, ?, ?)",
                (digest(session_id), user.id, now, now + hours * 3600),
            )
        return session_id

    def user(self, session_id: str, *, now: float | None = None) -> User | None:
        """The user of a live session; None for an unknown or expired one."""
        now = time.time() if now is None else now
        rows = self.state.query(
            "SELECT u.* FROM account_session s JOIN account_user u ON u.id = s.user_id "
            "WHERE s.id_hash = ? AND s.expires > ?",
            (digest(session_id), now),
        )
        return _user(rows[0]) if rows else None

    def end(self, session_id: str) -> None:
        with self.state.connect() as db:
            db.execute("DELETE FROM account_session WHERE id_hash = ?", (digest(session_id),))
