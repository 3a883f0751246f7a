"""Snippets in the whoosh engine: for each hit, the section of its version that matched the
most leaves of the query, highlighted (:mod:`store.index.highlight`); with no word to
highlight, the start of the version.
"""

from __future__ import annotations

from whoosh.searching import Searcher

from store.index.analysis import PolicyAnalyzer
from store.index.highlight import cut, highlight, reading_text
from store.index.whoosh.catalog import Catalog
from store.index.whoosh.matching import Evaluator
from store.index.whoosh.schema import is_text_field, term_key


def snippets(
    searcher: Searcher, catalog: Catalog, ev: Evaluator, hits: list[tuple[int, int]]
) -> dict[int, str]:
    """HTML-safe snippets for the hits (pid, version): each from the section of that version
    that matched the most leaves of the query (then the most often)."""
    found = ev.sections_matching(hits)
    subs = [s for s, _ in searcher.leaf_searchers()]
    out = {}
    for pid, seq in hits:
        if not found[pid]:
            out[pid] = _opening(searcher, catalog, pid, seq)
            continue
        (seg, docnum), (leaves, _) = max(
            found[pid].items(), key=lambda kv: (len(kv[1][0]), kv[1][1], -kv[0][1])
        )
        stored = subs[seg].reader().stored_fields(docnum)
        name, text = next((k, v) for k, v in stored.items() if is_text_field(k))
        lang = name[4:]
        terms = set().union(*(ev.leaves[i].terms.get(lang, set()) for i in leaves))
        exact = frozenset().union(
            *(ev.leaves[i].terms.get(term_key(lang, raw=True), set()) for i in leaves)
        )
        analyzer = searcher.schema[name].analyzer
        assert isinstance(analyzer, PolicyAnalyzer)
        out[pid] = highlight(text, terms, analyzer, exact)
    return out


def _opening(searcher: Searcher, catalog: Catalog, pid: int, seq: int) -> str:
    """No word to highlight (a query of filters): the start of the version."""
    subs = [s for s, _ in searcher.leaf_searchers()]
    best: tuple[int, int, int] | None = None
    for i, view in enumerate(catalog.segments):
        for docnum in view.docs_by_pid.get(pid, ()):
            if view.first[docnum] <= seq <= catalog.last(view, docnum):
                candidate = (view.run[docnum], i, docnum)
                if best is None or candidate < best:
                    best = candidate
    if best is None:
        return ""
    stored = subs[best[1]].reader().stored_fields(best[2])
    text = next(v for k, v in stored.items() if is_text_field(k))
    return cut(reading_text(text))
