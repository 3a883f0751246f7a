"""API tokens for scripts: a random secret shown once, stored as its SHA-256 digest, with a
name and a role; sent as ``Authorization: Bearer <token>``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from archive.accounts.errors import DuplicateNameError, UnknownNameError
from archive.accounts.names import check_name
from archive.accounts.roles import check_role
from archive.accounts.schema import ensure_schema
from archive.accounts.sessions import digest
from archive.accounts.users import User
from store.state import Row, State

PREFIX = "pa_"
MAX_TOKEN = 200


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    role: str
    created: str
    last_used: str | None

    def as_user(self) -> User:
        return User(id=self.id, name=f"token:{self.name}", role=self.role, token=True)


def _token(row: Row) -> ApiToken:
    return ApiToken(row["id"], row["name"], row["role"], row["created"], row["last_used"])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ApiTokens:
    def __init__(self, state: State) -> None:
        ensure_schema(state)
        self.state = state

    def create(self, name: str, role: str) -> tuple[ApiToken, str]:
        """A new token; returns it and its secret (the only time the secret is known)."""
        check_name(name, "token name")
        check_role(role)
        secret = PREFIX + secrets.token_urlsafe(32)
        now = _now()
        with self.state.connect() as db:
            added = db.execute(
                "INSERT INTO account_token(name, role, token_hash, created) VALUES(?, ?, ?, ?) "
                "ON CONFLICT(name) DO NOTHING RETURNING id",
                (name, role, digest(secret), now),
            ).fetchone()
        if added is None:
            raise DuplicateNameError(f"there is already a token {name!r}")
        return ApiToken(int(added["id"]), name, role, now, None), secret

    def check(self, secret: str) -> ApiToken | None:
        """The token this secret belongs to (and note its use); None if unknown or revoked."""
        if not secret.startswith(PREFIX) or len(secret) > MAX_TOKEN:
            return None
        hashed = digest(secret)
        rows = self.state.query("SELECT * FROM account_token WHERE token_hash = ?", (hashed,))
        if not rows:
            return None
        token = _token(rows[0])
        now = _now()
        if (token.last_used or "")[:16] != now[:16]:  # at most one write a minute
            with self.state.connect() as db:
                db.execute("UPDATE account_token SET last_used = ? WHERE id = ?", (now, token.id))
        return token

    def all(self) -> list[ApiToken]:
        return [_token(r) for r in self.state.query("SELECT * FROM account_token ORDER BY name")]

    def revoke(self, name: str) -> ApiToken:
        rows = self.state.query("SELECT * FROM account_token WHERE name = ?", (name,))
        if not rows:
            raise UnknownNameError(
                f"there is no token {name[:64]!r} (see `policy-archive token list`)"
            )
        with self.state.connect() as db:
            db.execute("DELETE FROM account_token WHERE id = ?", (rows[0]["id"],))
        return _token(rows[0])
