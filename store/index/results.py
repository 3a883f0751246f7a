"""From matching versions to a page of results: which versions count, ranking, facets.

Which versions a query looks at (per policy, as a bit set): the current version by default;
with dates, those in force at some time in the range; with ``history``, all of them (within
the dates, if given). Each policy with a match is one hit, shown at its latest matching
version and ranked by that version's BM25.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time

from whoosh.searching import Searcher

from store.index.catalog import Catalog, PolicyInfo
from store.index.matching import Evaluator, Masks, bm25
from store.index.query import PolicyMatches, SearchHit, SearchQuery, SearchResults
from store.index.snippets import snippets

FACET_LIMIT = 50


def _epoch(day: date, end: bool) -> int:
    return int(datetime.combine(day, time.max if end else time.min, tzinfo=UTC).timestamp())


def _in_range(info: PolicyInfo, start: int | None, end: int | None) -> int:
    bits = 0
    n = info.count
    for seq in range(n):
        if end is not None and info.dates[seq] > end:
            continue
        if start is not None and seq + 1 < n and info.dates[seq + 1] <= start:
            continue
        bits |= 1 << seq
    return bits


def allowed_versions(catalog: Catalog, query: SearchQuery) -> Masks:
    """Per policy, the versions this query searches (filters applied)."""
    start = _epoch(query.date_from, end=False) if query.date_from else None
    end = _epoch(query.date_to, end=True) if query.date_to else None
    dated = start is not None or end is not None
    service = query.service.casefold() if query.service else None
    type_ = query.type.casefold() if query.type else None
    lang = query.lang.casefold() if query.lang else None
    out: Masks = {}
    for pid, info in catalog.policies.items():
        n = info.count
        if not n:
            continue
        if service and info.service.casefold() != service:
            continue
        if type_ and info.type.casefold() != type_:
            continue
        if dated:
            bits = _in_range(info, start, end)
        elif query.history:
            bits = (1 << n) - 1
        else:
            bits = 1 << (n - 1)
        if lang:
            bits &= sum(1 << s for s, v in enumerate(info.langs) if _lang_is(v, lang))
        if bits:
            out[pid] = bits
    return out


def _lang_is(value: str | None, want: str) -> bool:
    value = (value or "").casefold()
    return value == want or value.split("-")[0] == want


def build_results(
    query: SearchQuery, searcher: Searcher, catalog: Catalog, ev: Evaluator, masks: Masks
) -> SearchResults:
    scored = []
    avg = (
        catalog.avg_length
        if (query.history or query.date_from or query.date_to)
        else catalog.avg_current_length
    )
    for pid, mask in masks.items():
        info = catalog.policies[pid]
        seq = mask.bit_length() - 1
        scored.append((-bm25(ev.leaves, pid, seq, info, avg), info.service, info.type, pid, mask))
    scored.sort()
    facets: dict[str, Counter[str]] = {"service": Counter(), "type": Counter(), "lang": Counter()}
    for _, service, type_, pid, mask in scored:
        info = catalog.policies[pid]
        facets["service"][service] += 1
        facets["type"][type_] += 1
        facets["lang"][info.langs[mask.bit_length() - 1] or "unknown"] += 1
    start = (query.page - 1) * query.limit
    page = scored[start : start + query.limit]
    texts = snippets(
        searcher, catalog, ev, [(pid, mask.bit_length() - 1) for _, _, _, pid, mask in page]
    )
    hits = []
    for neg_score, _, _, pid, mask in page:
        info = catalog.policies[pid]
        seq = mask.bit_length() - 1
        first = (mask & -mask).bit_length() - 1
        hits.append(
            SearchHit(
                service=info.service,
                type=info.type,
                lang=info.langs[seq],
                version=info.ref(seq),
                current=seq == info.count - 1,
                score=-neg_score,
                snippet=texts[pid],
                first_match=info.ref(first),
                last_match=info.ref(seq),
                matched_versions=mask.bit_count(),
            )
        )
    return SearchResults(
        query=query,
        total=len(scored),
        hits=hits,
        facets={
            name: dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:FACET_LIMIT])
            for name, counts in facets.items()
        },
    )


def policy_matches(catalog: Catalog, masks: Masks) -> list[PolicyMatches]:
    out = []
    for pid, mask in masks.items():
        info = catalog.policies[pid]
        out.append(
            PolicyMatches(
                service=info.service,
                type=info.type,
                versions=tuple(info.ref(s) for s in range(info.count)),
                matched=tuple(bool(mask >> s & 1) for s in range(info.count)),
            )
        )
    out.sort(key=lambda m: (m.service.casefold(), m.type.casefold()))
    return out
