"""Checking a login: the throttle first, then the password; one refusal for every failure."""

from __future__ import annotations

import logging
import time

from archive.accounts.errors import LoginRefusedError
from archive.accounts.passwords import verify_password
from archive.accounts.throttle import LoginThrottle
from archive.accounts.users import User, Users
from store.state import State

log = logging.getLogger(__name__)

REFUSED = "wrong user name or password"


def authenticate(state: State, name: str, password: str, *, now: float | None = None) -> User:
    """The user whose name and password these are; raise :class:`LoginRefusedError` if they
    are wrong or the account is locked (the message is the same)."""
    now = time.time() if now is None else now
    users, throttle = Users(state), LoginThrottle(state)
    user = users.find(name)
    matches = verify_password(password, users.password_hash(name) if user else None)
    if user is None:
        log.info("login: refused unknown user %r", name[:64])
        raise LoginRefusedError(REFUSED)
    locked = throttle.locked_until(name, now=now)
    if locked is not None:
        log.warning("login: refused %r, the account is locked for %.0f s more", name, locked - now)
        raise LoginRefusedError(REFUSED)
    if not matches:
        throttle.failed(name, now=now)
        log.info("login: wrong password for %r", name)
        raise LoginRefusedError(REFUSED)
    throttle.succeeded(name)
    return user
