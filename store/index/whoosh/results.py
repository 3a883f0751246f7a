"""From matching versions to a page of results in the whoosh engine: ranking.

Which versions a query looks at is :func:`store.index.policies.allowed_versions`. Each policy
with a match is one hit, shown at its latest matching version and ranked by that version's
BM25, plus, for the best-ranked, how close the query's words stand in it
(:mod:`store.index.whoosh.proximity`); the page of them is :func:`store.index.page.result_page`.
"""

from __future__ import annotations

from whoosh.searching import Searcher

from store.index.page import result_page
from store.index.query import SearchQuery, SearchResults
from store.index.whoosh.catalog import Catalog
from store.index.whoosh.matching import Evaluator, Masks, bm25
from store.index.whoosh.proximity import CANDIDATES, proximity
from store.index.whoosh.snippets import snippets


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
    top = scored[:CANDIDATES]
    boost = proximity(ev, [(pid, mask.bit_length() - 1) for _, _, _, pid, mask in top])
    if boost:
        top = [(s - boost.get(pid, 0.0), a, b, pid, m) for s, a, b, pid, m in top]
        scored = sorted(top) + scored[CANDIDATES:]
    return result_page(
        query,
        catalog.policies,
        [(-neg_score, pid, mask) for neg_score, _, _, pid, mask in scored],
        lambda shown: snippets(searcher, catalog, ev, shown),
    )
