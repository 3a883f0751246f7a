"""Search pages: full-text search with snippets and facets (services named like the query
first), and the clause timeline.

``run_search`` reads the request's parameters once for both the HTML page and ``/api/search``
so the two always answer the same question.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import Blueprint, render_template, request, url_for

from archive import search as engine
from store.index import SearchResults
from webui import queries
from webui.context import archive, date_arg, flag_arg, page_arg, text_arg, web_state

bp = Blueprint("search", __name__)

PER_PAGE = 10
FACET_VALUES = 8
"""Values shown per facet (the most frequent); the rest are behind "and N more"."""
FACETS = (("service", "Service"), ("type", "Document type"), ("lang", "Language"))


@dataclass(frozen=True)
class SearchParams:
    q: str
    history: bool
    service: str
    type: str
    lang: str
    date_from: date | None
    date_to: date | None
    page: int

    @classmethod
    def from_request(cls) -> SearchParams:
        return cls(
            q=text_arg("q"),  # checked by the engine: see archive.search.MAX_QUERY_CHARS
            history=flag_arg("history"),
            service=text_arg("service", max_chars=200),
            type=text_arg("type", max_chars=200),
            lang=text_arg("lang", max_chars=20),
            date_from=_day(date_arg("from", end_of_day=False)),
            date_to=_day(date_arg("to")),
            page=page_arg(high=engine.MAX_PAGE),
        )

    def url(self, **changes: Any) -> str:
        """This search's URL with some parameters changed (``None`` removes one)."""
        args: dict[str, Any] = {k: v for k, v in request.args.items() if v}
        args.pop("page", None)
        for key, value in changes.items():
            if value in (None, "", False):
                args.pop(key, None)
            else:
                args[key] = "1" if value is True else str(value)
        return url_for("search.search_page", **args)


def _day(value: datetime | None) -> date | None:
    return value.date() if value else None


def run_search(params: SearchParams) -> SearchResults:
    """The search engine's results for ``params``. Its errors (a bad or too broad query, a
    busy or damaged index) become their HTTP answer in :mod:`webui.errors`."""
    return engine.search(
        archive(),
        params.q,
        history=params.history,
        service=params.service or None,
        type=params.type or None,
        lang=params.lang or None,
        date_from=params.date_from,
        date_to=params.date_to,
        limit=PER_PAGE,
        page=params.page,
    )


def run_when(phrase: str) -> list[dict[str, Any]]:
    """The clause timeline of ``phrase``, as ``ClauseTimeline.as_json()`` dicts; errors as
    :func:`run_search`'s (the same time budget)."""
    return [t.as_json() for t in engine.when(archive(), phrase)]


@bp.get("/search")
def search_page() -> tuple[str, int]:
    """Services named like the query first, then full-text hits; a query that cannot be read
    is answered (400) on this page, with the form and the query kept."""
    params = SearchParams.from_request()
    results: dict[str, Any] | None = None
    error: str | None = None
    if params.q:
        try:
            results = run_search(params).as_json()
        except engine.QueryError as exc:
            error = str(exc)
    if results is not None:
        clean = web_state().renderer
        for hit in results["hits"]:
            hit["snippet_html"] = clean.snippet(hit.get("snippet") or "")
    active = {"service": params.service, "type": params.type, "lang": params.lang}
    page = render_template(
        "search.html",
        params=params,
        results=results,
        error=error,
        services=queries.matching_services(params.q) if params.page == 1 else [],
        facets=FACETS,
        facet_values=top_facets(results["facets"]) if results else {},
        active_facets=active,
    )
    return page, 400 if error else 200


def top_facets(
    facets: dict[str, dict[str, int]],
) -> dict[str, tuple[list[tuple[str, int]], list[tuple[str, int]]]]:
    """Per facet: its most frequent values, and the others (shown behind "and N more")."""
    out = {}
    for key, values in facets.items():
        ranked = sorted(values.items(), key=lambda item: (-item[1], item[0]))
        out[key] = (ranked[:FACET_VALUES], ranked[FACET_VALUES:])
    return out
