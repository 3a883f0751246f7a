"""Names of users and tokens: printable, at most 64 characters, no edge spaces."""

from __future__ import annotations

from archive.accounts.errors import InvalidNameError

MAX_NAME = 64


def check_name(name: str, what: str = "user name") -> str:
    if not name:
        raise InvalidNameError(f"the {what} is empty")
    if len(name) > MAX_NAME:
        raise InvalidNameError(f"the {what} is longer than {MAX_NAME} characters")
    if not name.isprintable() or name != name.strip():
        raise InvalidNameError(
            f"the {what} {name[:MAX_NAME]!r} has control characters or leading/trailing spaces"
        )
    return name
