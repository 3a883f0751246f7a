"""A page of search results from the ranked policies: facets, hits, snippets (engine-neutral).

Each engine ranks the policies with a match (one hit each, shown at its latest matching
version) and writes its own snippets; what makes the page of them is the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from store.index.policies import PolicyInfo
from store.index.query import SearchHit, SearchQuery, SearchResults

FACET_LIMIT = 50

Shown = list[tuple[int, int]]  # (pid, version shown) per hit of a page


def result_page(
    query: SearchQuery,
    policies: Mapping[int, PolicyInfo],
    ranked: Sequence[tuple[float, int, int]],
    snippets: Callable[[Shown], dict[int, str]],
    indexed_head: str | None = None,
) -> SearchResults:
    """The page ``query`` asks for of ``ranked`` (score, pid, mask of matching versions; best
    first), with the facets of all of them and ``snippets`` (HTML-safe, by pid) for the hits
    of the page."""
    facets: dict[str, Counter[str]] = {"service": Counter(), "type": Counter(), "lang": Counter()}
    for _, pid, mask in ranked:
        info = policies[pid]
        facets["service"][info.service] += 1
        facets["type"][info.type] += 1
        facets["lang"][info.langs[mask.bit_length() - 1] or "unknown"] += 1
    start = (query.page - 1) * query.limit
    page = ranked[start : start + query.limit]
    texts = snippets([(pid, mask.bit_length() - 1) for _, pid, mask in page])
    hits = []
    for score, pid, mask in page:
        info = policies[pid]
        seq = mask.bit_length() - 1
        first = (mask & -mask).bit_length() - 1
        hits.append(
            SearchHit(
                service=info.service,
                type=info.type,
                lang=info.langs[seq],
                version=info.ref(seq),
                current=seq == info.count - 1,
                score=score,
                snippet=texts[pid],
                first_match=info.ref(first),
                last_match=info.ref(seq),
                matched_versions=mask.bit_count(),
            )
        )
    return SearchResults(
        query=query,
        total=len(ranked),
        hits=hits,
        facets={
            name: dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:FACET_LIMIT])
            for name, counts in facets.items()
        },
        indexed_head=indexed_head,
    )
