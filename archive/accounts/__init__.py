"""Accounts of the admin UI: users with roles, sessions, API tokens, login throttling, audit log.

Everything lives in ``state.sqlite`` (through :meth:`store.state.State.connect`); each module
creates its own tables (:func:`archive.accounts.schema.ensure_schema`). Secrets are never
stored: passwords as salted scrypt hashes, session ids and API tokens as SHA-256 digests.
"""

from archive.accounts.errors import AccountError
from archive.accounts.roles import ROLES, has_role
from archive.accounts.users import User, Users

__all__ = ["ROLES", "AccountError", "User", "Users", "has_role"]
