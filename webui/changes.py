"""Recent changes across the archive, filterable by service, document type and date, each with
its change summary (sections, words, main edits: :mod:`archive.diff.summary`)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from datetime import datetime

from flask import Blueprint, abort, g, render_template
from markupsafe import Markup

from archive.diff import predecessor
from archive.diff.summary import ChangeSummary, summary_within
from store.git.versions import Version
from webui import queries
from webui.context import PolicyRef, archive, date_arg, page_arg, text_arg, web_state

bp = Blueprint("changes", __name__)

SUMMARY_BUDGET = 1.0
"""Seconds one page may spend computing summaries nobody asked for before (each is then kept
in memory and in state.sqlite, so the next request reads it); the rest say "not computed yet"."""


def change_filters() -> tuple[str, str, int]:
    return text_arg("service", max_chars=200), text_arg("type", max_chars=200), page_arg()


def date_filters() -> tuple[datetime | None, datetime | None]:
    """``from`` (start of that day) and ``to`` (end of that day), each optional."""
    since, until = date_arg("from", end_of_day=False), date_arg("to")
    if since and until and since > until:
        abort(400, description="from is after to: give the earlier date first.")
    return since, until


def filtered_changes(
    *,
    service: str | None,
    type_: str | None,
    since: datetime | None,
    until: datetime | None,
    page: int,
) -> queries.ChangePage:
    """:func:`webui.queries.recent_changes`, also limited to observations in a date range."""
    if since is None and until is None:
        return queries.recent_changes(service=service, type_=type_, page=page)
    selected = [
        v
        for v in web_state().newest_first()
        if (not service or v.service == service)
        and (not type_ or v.type == type_)
        and (since is None or v.date >= since)
        and (until is None or v.date <= until)
    ]
    per_page = queries.CHANGES_PER_PAGE
    pages = max(1, math.ceil(len(selected) / per_page))
    if page > pages:
        abort(404, description=f"There is no page {page}: the last page is {pages}.")
    start = (page - 1) * per_page
    return queries.ChangePage(selected[start : start + per_page], page, pages, len(selected))


def summaries(
    pairs: Iterable[tuple[Version | None, Version]], budget: float = SUMMARY_BUDGET
) -> dict[str, ChangeSummary | None]:
    """Summaries of (previous, version) pairs by version id; None for those not known yet
    once ``budget`` seconds of this request have gone into computing others."""
    state = web_state()
    deadline = _deadline(budget)
    return {
        new.id: summary_within(
            state.archive.versions,
            old,
            new,
            diffs=state.diffs,
            state=state.archive.state,
            deadline=deadline,
        )
        for old, new in pairs
    }


def _deadline(budget: float) -> float:
    """One budget per request, shared by every list of summaries on the page."""
    if "summary_deadline" not in g:
        g.summary_deadline = time.monotonic() + budget
    return float(g.summary_deadline)


def change_summaries(
    changes: list[Version], budget: float = SUMMARY_BUDGET
) -> dict[str, ChangeSummary | None]:
    """Summaries of listed versions, each against the version before it."""
    versions = web_state().archive.versions
    return summaries(((predecessor(versions, v), v) for v in changes), budget)


@bp.app_template_filter("change_summary")
def change_summary_html(summary: ChangeSummary | None, max_sections: int = 5) -> Markup:
    """A summary as escaped HTML: the counts and sections in one line, then the main edits."""
    if summary is None:
        return Markup('<span class="summary-pending">summary not computed yet</span>')
    line = Markup('<p class="change-line">{}</p>').format(summary.describe(max_sections))
    if not summary.excerpts:
        return Markup('<div class="change-summary">{}</div>').format(line)
    items = Markup("").join(
        Markup("<li>{}{}{}</li>").format(
            Markup('<span class="section">{}</span>: ').format(e.section) if e.section else "",
            Markup("<del>“{}”</del> → ").format(e.before) if e.before else Markup("added "),
            Markup("<ins>“{}”</ins>").format(e.after) if e.after else Markup("removed"),
        )
        for e in summary.excerpts
    )
    return Markup('<div class="change-summary">{}<ul class="excerpts">{}</ul></div>').format(
        line, items
    )


@bp.app_template_global()
def timeline_summaries(ref: PolicyRef) -> dict[str, ChangeSummary | None]:
    """For the policy page's timeline: each version's summary by version id."""
    history = ref.history
    return summaries((history[k - 1] if k else None, v) for k, v in enumerate(history))


@bp.get("/changes")
def changes() -> str:
    service, type_, page = change_filters()
    since, until = date_filters()
    result = filtered_changes(
        service=service or None, type_=type_ or None, since=since, until=until, page=page
    )
    return render_template(
        "changes.html",
        result=result,
        service=service,
        type_=type_,
        since=text_arg("from", max_chars=64) if since else "",
        until=text_arg("to", max_chars=64) if until else "",
        summaries=change_summaries(result.changes),
        kinds=queries.KIND_LABELS,
        services=sorted({s for s, _ in archive().versions.policies()}),
    )
