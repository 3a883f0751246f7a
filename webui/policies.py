"""Policy pages: the list of policies (filtered, sorted), a service's documents, and one
policy's text (current, any version, or the version in force at a date) with its source, the
status of its last check and its timeline."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, abort, render_template, request

from store.git.versions import Version
from webui import queries
from webui.context import (
    VERSION_ID,
    PolicyRef,
    choice_arg,
    date_arg,
    policy_or_404,
    text_arg,
    version_in,
    web_state,
)

bp = Blueprint("policies", __name__)


@bp.get("/policies")
def index() -> str:
    """Every policy; ``?q=`` keeps those whose service or type contains it, ``?sort=`` orders
    them by name, last change or status."""
    q = text_arg("q", max_chars=200)
    sort = choice_arg("sort", queries.POLICY_SORTS)
    rows = queries.sorted_policies(queries.filter_policies(queries.all_policies(), q), sort)
    return render_template(
        "policies.html", policies=rows, q=q, sort=sort, sorts=queries.POLICY_SORT_LABELS
    )


@bp.get("/services/<name:service>")
def service(service: str) -> str:
    """One service's documents, with their last change and the status of their last check."""
    rows = queries.service_policies(service)
    if not rows:
        abort(404, description=f"There is no service {service!r} in this archive.")
    return render_template(
        "service.html",
        service=service,
        policies=rows,
        recent=queries.recent_changes(service=service, per_page=10).changes,
        kinds=queries.KIND_LABELS,
    )


@dataclass(frozen=True)
class TimelineEntry:
    version: Version
    words: int
    delta: int | None


def timeline(ref: PolicyRef) -> list[TimelineEntry]:
    """Versions newest first, with their size in words and the change in size."""
    state = web_state()
    entries = []
    previous: int | None = None
    for version in ref.history:
        words = state.word_count(version)
        delta = None if previous is None else words - previous
        entries.append(TimelineEntry(version, words, delta))
        previous = words
    return entries[::-1]


def selected_version(ref: PolicyRef) -> tuple[Version | None, str | None]:
    """The version asked for by ``?version=`` or ``?at=`` (default: current), and why."""
    version_id = request.args.get("version", "").strip()
    at_raw = request.args.get("at", "").strip()
    if version_id and at_raw:
        abort(400, description="Give either version or at, not both.")
    if version_id:
        return version_in(ref, version_id), None
    when = date_arg("at")
    if when is None:
        return ref.current, None
    found = web_state().archive.versions.at(ref.service, ref.type, when)
    if found is None:
        first = ref.history[0].date.date().isoformat() if ref.history else None
        abort(
            404,
            description=f"No version of {ref.service} {ref.type} was in force at {at_raw}"
            + (f"; the first was recorded on {first}." if first else "."),
        )
    return found, at_raw


@bp.get("/policies/<name:service>/<name:type_>")
def policy(service: str, type_: str) -> str:
    ref = policy_or_404(service, type_)
    version, at = selected_version(ref)
    html = web_state().render(version) if version else None
    previous, following = queries.neighbours(ref, version) if version else (None, None)
    return render_template(
        "policy.html",
        ref=ref,
        version=version,
        at=at,
        html=html,
        previous=previous,
        following=following,
        timeline=timeline(ref),
        kinds=queries.KIND_LABELS,
    )


@bp.get("/policies/<name:service>/<name:type_>/snapshot/<snapshot_id>")
def snapshot(service: str, type_: str, snapshot_id: str) -> Response:
    """The raw bytes a version was extracted from (``?page=N`` for combined documents).

    Served as plain text (HTML) or as a download (anything else), sandboxed: a snapshot is
    the site's own markup and must never run in our origin."""
    ref = policy_or_404(service, type_)
    if not VERSION_ID.match(snapshot_id):
        abort(400, description=f"{snapshot_id[:60]!r} is not a snapshot id.")
    stored = web_state().archive.snapshots.get(snapshot_id, ref.service, ref.type)
    if stored is None:
        abort(404, description=f"No snapshot {snapshot_id[:12]} of {ref.service} {ref.type}.")
    number = request.args.get("page", "1")
    if not number.isdigit() or not 1 <= int(number) <= len(stored.pages):
        abort(400, description=f"page must be a number from 1 to {len(stored.pages)}.")
    page = stored.pages[int(number) - 1]
    is_html = "html" in page.content_type or not page.content_type
    response = Response(page.body, mimetype="text/plain" if is_html else "application/octet-stream")
    extension = ".html" if is_html else ".pdf" if "pdf" in page.content_type else ".bin"
    disposition = "inline" if is_html else "attachment"
    response.headers["Content-Disposition"] = (
        f'{disposition}; filename="snapshot-{stored.id[:12]}-{number}{extension}"'
    )
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
