"""Password hashing with ``hashlib.scrypt``: a random 16-byte salt per password, the parameters
stored with the hash (``scrypt$n$r$p$salt$hash``) so they can be raised later, and a
constant-time comparison. See docs/decisions/0007-accounts.md for the parameters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from archive.accounts.errors import WeakPasswordError

MIN_PASSWORD = 10
N, R, P = 2**14, 8, 1
"""scrypt cost: 16 MiB of memory and ~50 ms per hash on one core."""
DKLEN = 32
MAXMEM = 64 * 1024 * 1024
_DUMMY = f"scrypt${N}${R}${P}$" + "A" * 22 + "$" + "A" * 43
"""A well-formed hash no password matches: checked for unknown users, so they take as long."""


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise WeakPasswordError(
            f"the password is too short: use at least {MIN_PASSWORD} characters"
        )
    return password


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=MAXMEM, dklen=DKLEN
    )


def hash_password(password: str) -> str:
    """The stored form of a new password (checked for length first)."""
    check_password(password)
    salt = secrets.token_bytes(16)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(_scrypt(password, salt, N, R, P))}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored`` (None: an unknown user, checked all the same)."""
    scheme, n, r, p, salt, digest = (stored or _DUMMY).split("$")
    if scheme != "scrypt":
        return False
    computed = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    return hmac.compare_digest(computed, _unb64(digest)) and stored is not None
