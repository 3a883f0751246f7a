"""The JSON API: the twin of every page, under /api/ (documented in webui/API.md)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, url_for
from werkzeug.wrappers import Response

from archive.tracking.status import history_json
from webui import queries
from webui.changes import change_filters, change_summaries, date_filters, filtered_changes
from webui.context import policy_or_404, text_arg, web_state
from webui.diff import diff_args
from webui.policies import selected_version
from webui.search import SearchParams, run_search, run_when

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/")
def index() -> Response:
    """The home page's twin: counts, recent changes, failing policies and the endpoints."""
    refs = queries.all_policies()
    return jsonify(
        {
            "counts": queries.counts(refs),
            "recent": [queries.change_json(v) for v in queries.recent_changes(per_page=15).changes],
            "failing": [queries.policy_summary(r) for r in refs if r.state.failing],
            "endpoints": {
                "search": url_for("api.search"),
                "policies": url_for("api.policies"),
                "changes": url_for("api.changes"),
                "when": url_for("api.when"),
            },
        }
    )


@bp.get("/search")
def search() -> Response:
    params = SearchParams.from_request()
    if not params.q:
        abort(400, description="q is required: give a search query.")
    return jsonify(run_search(params).as_json())


@bp.get("/when")
def when() -> Response:
    phrase = text_arg("phrase")
    if not phrase:
        abort(400, description="phrase is required: give a phrase to follow through time.")
    return jsonify(run_when(phrase))


@bp.get("/policies")
def policies() -> Response:
    return jsonify([queries.policy_summary(r) for r in queries.all_policies()])


@bp.get("/policies/<name:service>/<name:type_>")
def policy(service: str, type_: str) -> Response:
    """A policy with its status and the text of the version asked for (``?version=``/``?at=``)."""
    ref = policy_or_404(service, type_)
    version, _ = selected_version(ref)
    body: dict[str, Any] = queries.policy_summary(ref)
    body["version"] = version.as_json() if version else None
    body["text"] = (
        web_state().archive.versions.text(ref.service, ref.type, version.id) if version else None
    )
    return jsonify(body)


@bp.get("/policies/<name:service>/<name:type_>/versions")
def versions(service: str, type_: str) -> Response:
    """The ``history --json`` shape: a list of versions, oldest first."""
    ref = policy_or_404(service, type_)
    return jsonify(history_json(ref.history))


@bp.get("/policies/<name:service>/<name:type_>/diff")
def diff(service: str, type_: str) -> Response:
    ref = policy_or_404(service, type_)
    from_id, to_id, context = diff_args()
    return jsonify(queries.select_diff(ref, from_id, to_id).as_json(context))


API_SUMMARY_BUDGET = 5.0
"""Seconds /api/changes may spend computing summaries not known yet (the rest are null)."""


@bp.get("/changes")
def changes() -> Response:
    """/changes' twin; each change carries its ``summary`` (null if not computed in time)."""
    service, type_, page = change_filters()
    since, until = date_filters()
    result = filtered_changes(
        service=service or None, type_=type_ or None, since=since, until=until, page=page
    )
    body = result.as_json()
    summaries = change_summaries(result.changes, budget=API_SUMMARY_BUDGET)
    for item, version in zip(body["changes"], result.changes, strict=True):
        found = summaries[version.id]
        item["summary"] = found.as_json() if found is not None else None
    return jsonify(body)
