"""Users: a name, a role and a password hash, in the state database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from archive.accounts.errors import DuplicateNameError, UnknownNameError
from archive.accounts.names import check_name
from archive.accounts.passwords import hash_password
from archive.accounts.roles import check_role, has_role
from archive.accounts.schema import ensure_schema
from store.state import Row, State


@dataclass(frozen=True)
class User:
    """Who is making a request: an account, or an API token (``token=True``, ``id`` the
    token's id, ``name`` ``token:<name>``)."""

    id: int
    name: str
    role: str
    token: bool = False

    def may(self, role: str) -> bool:
        return has_role(self.role, role)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _user(row: Row) -> User:
    return User(id=row["id"], name=row["name"], role=row["role"])


class Users:
    def __init__(self, state: State) -> None:
        ensure_schema(state)
        self.state = state

    def add(self, name: str, role: str, password: str) -> User:
        check_name(name)
        check_role(role)
        hashed = hash_password(password)
        now = _now()
        with self.state.connect() as db:
            added = db.execute(
                "INSERT INTO account_user(name, role, password, created, changed) "
                "VALUES(?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING RETURNING id",
                (name, role, hashed, now, now),
            ).fetchone()
        if added is None:
            raise DuplicateNameError(f"there is already a user {name!r}")
        return User(id=int(added["id"]), name=name, role=role)

    def get(self, user_id: int) -> User | None:
        rows = self.state.query("SELECT * FROM account_user WHERE id = ?", (user_id,))
        return _user(rows[0]) if rows else None

    def find(self, name: str) -> User | None:
        rows = self.state.query("SELECT * FROM account_user WHERE name = ?", (name,))
        return _user(rows[0]) if rows else None

    def named(self, name: str) -> User:
        user = self.find(name)
        if user is None:
            raise UnknownNameError(
                f"there is no user {name[:64]!r} (see `policy-archive user list`)"
            )
        return user

    def password_hash(self, name: str) -> str | None:
        rows = self.state.query("SELECT password FROM account_user WHERE name = ?", (name,))
        return rows[0]["password"] if rows else None

    def all(self) -> list[User]:
        return [_user(r) for r in self.state.query("SELECT * FROM account_user ORDER BY name")]

    def count(self) -> int:
        return int(self.state.query("SELECT COUNT(*) AS n FROM account_user")[0]["n"])

    def remove(self, name: str) -> User:
        """Delete the user and end their sessions."""
        user = self.named(name)
        with self.state.connect() as db:
            db.execute("DELETE FROM account_session WHERE user_id = ?", (user.id,))
            db.execute("DELETE FROM account_user WHERE id = ?", (user.id,))
        return user

    def set_password(self, name: str, password: str) -> User:
        """A new password; the user's sessions end (log in again everywhere) and a login
        lock is lifted."""
        user = self.named(name)
        hashed = hash_password(password)
        with self.state.connect() as db:
            db.execute(
                "UPDATE account_user SET password = ?, changed = ? WHERE id = ?",
                (hashed, _now(), user.id),
            )
            db.execute("DELETE FROM account_session WHERE user_id = ?", (user.id,))
            db.execute("DELETE FROM account_login WHERE name = ?", (user.name,))  # and any lock
        return user

    def set_role(self, name: str, role: str) -> User:
        user = self.named(name)
        check_role(role)
        with self.state.connect() as db:
            db.execute(
                "UPDATE account_user SET role = ?, changed = ? WHERE id = ?",
                (role, _now(), user.id),
            )
        return User(id=user.id, name=user.name, role=role)
