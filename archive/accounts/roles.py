"""Roles, lowest first: each role may do what the ones before it may."""

from __future__ import annotations

from archive.accounts.errors import InvalidRoleError

VIEWER, EDITOR, ADMIN = "viewer", "editor", "admin"
ROLES = (VIEWER, EDITOR, ADMIN)
"""viewer: may see the admin pages; editor: also policies, selectors, rechecks; admin: also
users, subscriptions, webhooks."""


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidRoleError(f"unknown role {role[:40]!r}: use one of {', '.join(ROLES)}")
    return role


def has_role(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may."""
    return ROLES.index(check_role(role)) >= ROLES.index(check_role(needed))
