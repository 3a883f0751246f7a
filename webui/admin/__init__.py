"""The admin UI under /admin/: one blueprint per page family (home, users here; policies and
the operator's views in their own modules), all behind :func:`webui.auth.require_role`.

``NAV`` lists the admin navigation as (endpoint, label, role); admin/base.html shows the
entries whose endpoint is registered and whose role the user has.
"""

from __future__ import annotations

from collections.abc import Container

from archive.accounts.users import User

NAV: list[tuple[str, str, str]] = [
    ("admin_home.index", "Overview", "viewer"),
    ("admin_policies.index", "Policies", "viewer"),
    ("admin_operator.failing", "Failing", "viewer"),
    ("admin_operator.outbox", "Deliveries", "viewer"),
    ("admin_operator.webhooks", "Webhooks & subscriptions", "admin"),
    ("admin_operator.audit", "Audit log", "viewer"),
    ("admin_users.index", "Users", "admin"),
]


def nav_for(user: User | None, endpoints: Container[str]) -> list[tuple[str, str]]:
    """(endpoint, label) of the entries ``user`` may open, among the registered ``endpoints``."""
    if user is None:
        return []
    return [(e, label) for e, label, role in NAV if e in endpoints and user.may(role)]
