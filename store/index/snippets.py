"""Snippets: the best-matching section of a hit's version, escaped, matched words in <mark>.

Highlighting re-analyses the text it cuts from, so it only ever sees one section (a hundred
words or so), never a whole policy. The cut is the window of ``SNIPPET_CHARS`` with the most
matched words (different words first), widened to whole words.
"""

from __future__ import annotations

import html
import re

from whoosh.searching import Searcher

from store.index.analysis import PolicyAnalyzer, words
from store.index.catalog import Catalog
from store.index.matching import Evaluator
from store.index.schema import is_text_field

SNIPPET_CHARS = 240
CONTEXT_CHARS = 60
_SPACES = re.compile(r"\s+")


def _escape(text: str) -> str:
    return html.escape(_SPACES.sub(" ", text))


def highlight(text: str, terms: set[str], analyzer: PolicyAnalyzer) -> str:
    """The best window of ``text`` for ``terms`` (index terms), as escaped HTML."""
    found = [
        (m.start(), m.end(), term)
        for m in words(text)
        if (term := analyzer.term(m.group())) in terms
    ]
    if not found:
        return _plain(text)
    best, best_key = 0, (0, 0)
    for i, (start, _, _) in enumerate(found):
        inside = [f for f in found[i:] if f[1] <= start + SNIPPET_CHARS - CONTEXT_CHARS]
        key = (len({f[2] for f in inside}), len(inside))
        if key > best_key:
            best, best_key = i, key
    begin = max(0, found[best][0] - CONTEXT_CHARS)
    while begin > 0 and not text[begin - 1].isspace():
        begin -= 1
    end = min(len(text), begin + SNIPPET_CHARS)
    while end < len(text) and not text[end].isspace():
        end += 1
    out = ["… " if begin > 0 else ""]
    pos = begin
    for start, stop, _ in found:
        if start < begin or stop > end:
            continue
        out.append(_escape(text[pos:start]))
        out.append("<mark>" + _escape(text[start:stop]) + "</mark>")
        pos = stop
    out.append(_escape(text[pos:end]))
    out.append(" …" if end < len(text) else "")
    return "".join(out).strip()


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
        analyzer = searcher.schema[name].analyzer
        assert isinstance(analyzer, PolicyAnalyzer)
        out[pid] = highlight(text, terms, analyzer)
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
    return _plain(text)


def _plain(text: str) -> str:
    flat = _SPACES.sub(" ", text).strip()
    if len(flat) <= SNIPPET_CHARS:
        return html.escape(flat)
    cut = flat[:SNIPPET_CHARS].rsplit(" ", 1)[0]
    return html.escape(cut) + " …"
