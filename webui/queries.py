"""Read models shared by the HTML pages and their JSON twins, so both always agree."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import abort, url_for

from archive.diff import TextDiff, diff_versions, predecessor
from archive.tracking import status
from archive.tracking.status import PolicyRow
from store.git.versions import REEXTRACT, Version
from webui.context import PolicyRef, archive, version_in, web_state

CHANGES_PER_PAGE = 50
KIND_LABELS = {"first_record": "First record", "change": "Change", "reextract": "Re-extract"}


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def policy_url(service: str, type_: str, **args: Any) -> str:
    return url_for("policies.policy", service=service, type_=type_, **args)


def diff_url(version: Version, **args: Any) -> str:
    return url_for(
        "diff.diff_page", service=version.service, type_=version.type, to=version.id, **args
    )


def version_json(version: Version) -> dict[str, Any]:
    """``Version.as_json()`` (the ``history --json`` shape) plus the policy's names."""
    return {"service": version.service, "type": version.type, **version.as_json()}


def status_json(ref: PolicyRef | PolicyRow) -> dict[str, Any]:
    st = ref.state
    return {
        "last_check": iso(st.last_check),
        "last_success": iso(st.last_success),
        "failures": st.failures,
        "failing": st.failing,
        "last_error": st.last_error,
        "transient": st.last_error_transient,
        "health": status.health_of(st),
        "held_back_since": iso(st.suspect_since) if st.suspect_hash else None,
    }


def policy_summary(ref: PolicyRef | PolicyRow) -> dict[str, Any]:
    """A policy in the API: the ``list --json`` facts, grouped, with its links."""
    current = ref.current
    return {
        "service": ref.service,
        "type": ref.type,
        "language": ref.language,
        "urls": list(ref.urls),
        "configured": ref.config is not None,
        "versions": len(ref.history),
        "current": current.as_json() if current else None,
        "last_change": iso(current.date) if current else None,
        "status": status_json(ref),
        "links": {
            "html": policy_url(ref.service, ref.type),
            "versions": url_for("api.versions", service=ref.service, type_=ref.type),
        },
    }


def _stored_policies() -> list[status.StoredPolicy]:
    arch = archive()
    return status.stored_policies(arch.config, arch.versions, arch.state)


def all_policies() -> list[PolicyRow]:
    """Every policy with a version or a configuration (see :mod:`archive.status`), with its
    state as it is now (the git side is cached per HEAD; state is read once per call)."""
    stored = web_state().per_head("stored_policies", _stored_policies)
    return status.with_state(stored, archive().state.all())


POLICY_SORT_LABELS = {"name": "name", "change": "last change", "status": "status"}
POLICY_SORTS = tuple(POLICY_SORT_LABELS)
"""Orders of ``/policies`` (``?sort=``); the first is the default."""
HEALTH_ORDER = {h: i for i, h in enumerate(status.HEALTH)}
"""Status sort: failing first, then errors, held back, ok, never checked."""


def filter_policies(rows: list[PolicyRow], q: str) -> list[PolicyRow]:
    """The rows whose service or document type contains ``q`` (any case)."""
    needle = q.casefold()
    if not needle:
        return rows
    return [r for r in rows if needle in r.service.casefold() or needle in r.type.casefold()]


def sorted_policies(rows: list[PolicyRow], sort: str) -> list[PolicyRow]:
    """``rows`` by name (service, type), newest change first, or worst status first."""
    by_name = sorted(rows, key=lambda r: (r.service.casefold(), r.type.casefold()))
    if sort == "change":
        never = datetime.min.replace(tzinfo=UTC)
        return sorted(by_name, key=lambda r: r.current.date if r.current else never, reverse=True)
    if sort == "status":
        return sorted(by_name, key=lambda r: HEALTH_ORDER[r.health])
    return by_name


def service_policies(service: str) -> list[PolicyRow]:
    """The documents of one service, by type."""
    return [r for r in all_policies() if r.service == service]


@dataclass(frozen=True)
class ServiceMatch:
    """A service whose name matches a search: its documents' count, for "Spotify — 3
    documents"."""

    service: str
    documents: int


MAX_SERVICE_MATCHES = 5


def matching_services(q: str) -> list[ServiceMatch]:
    """Services named like the query (any case): the exact name first, then names that start
    with it (at most :data:`MAX_SERVICE_MATCHES`)."""
    needle = q.strip().casefold()
    if not needle:
        return []
    documents: dict[str, int] = {}
    for row in all_policies():
        documents[row.service] = documents.get(row.service, 0) + 1
    exact = [s for s in documents if s.casefold() == needle]
    prefix = sorted(
        (s for s in documents if s.casefold() != needle and s.casefold().startswith(needle)),
        key=str.casefold,
    )
    return [ServiceMatch(s, documents[s]) for s in (exact + prefix)[:MAX_SERVICE_MATCHES]]


def counts(rows: list[PolicyRow] | None = None) -> dict[str, Any]:
    """Policies, versions, the last check and how many policies are failing."""
    return status.counts(all_policies() if rows is None else rows)


@dataclass(frozen=True)
class ChangePage:
    changes: list[Version]
    page: int
    pages: int
    total: int

    def as_json(self) -> dict[str, Any]:
        return {
            "changes": [change_json(v) for v in self.changes],
            "page": self.page,
            "pages": self.pages,
            "total": self.total,
        }


def change_json(version: Version) -> dict[str, Any]:
    return {**version_json(version), "diff": diff_url(version)}


def recent_changes(
    *,
    service: str | None = None,
    type_: str | None = None,
    page: int = 1,
    per_page: int = CHANGES_PER_PAGE,
    reextracts: bool = True,
) -> ChangePage:
    """Versions newest first across the archive, optionally of one service or type."""
    newest = web_state().newest_first()
    selected = (
        newest
        if not service and not type_ and reextracts
        else [
            v
            for v in newest
            if (not service or v.service == service)
            and (not type_ or v.type == type_)
            and (reextracts or v.kind != REEXTRACT)
        ]
    )
    pages = max(1, math.ceil(len(selected) / per_page))
    if page > pages:
        abort(404, description=f"There is no page {page}: the last page is {pages}.")
    start = (page - 1) * per_page
    return ChangePage(selected[start : start + per_page], page, pages, len(selected))


# --------------------------------------------------------------------------- diffs


@dataclass(frozen=True)
class VersionDiff:
    ref: PolicyRef
    old: Version | None
    new: Version
    diff: TextDiff

    @property
    def reextract(self) -> bool:
        return self.new.kind == REEXTRACT

    def as_json(self, context: int) -> dict[str, Any]:
        return {
            "service": self.ref.service,
            "type": self.ref.type,
            "from": self.old.as_json() if self.old else None,
            "to": self.new.as_json(),
            "reextract": self.reextract,
            **self.diff.as_json(context),
        }


def select_diff(ref: PolicyRef, from_id: str, to_id: str) -> VersionDiff:
    """The two versions named by ``from``/``to`` (defaults: current, and its predecessor)."""
    if not ref.history:
        abort(404, description=f"{ref.service} {ref.type} has no versions yet.")
    new = version_in(ref, to_id, "to") if to_id else ref.history[-1]
    if from_id:
        old: Version | None = version_in(ref, from_id, "from")
    else:
        old = predecessor(archive().versions, new)
    state = web_state()
    diff = diff_versions(state.archive.versions, old, new, cache=state.diffs)
    return VersionDiff(ref, old, new, diff)


def neighbours(ref: PolicyRef, version: Version) -> tuple[Version | None, Version | None]:
    """The versions just before and after ``version`` in its policy's history."""
    ids = [v.id for v in ref.history]
    i = ids.index(version.id)
    return (ref.history[i - 1] if i else None), (
        ref.history[i + 1] if i + 1 < len(ref.history) else None
    )
