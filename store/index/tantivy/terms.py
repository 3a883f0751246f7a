"""Index terms for tantivy: text analysed by the project's own analysers, joined by spaces.

tantivy only splits what it is given on spaces, so both engines index the same terms
(:class:`store.index.analysis.PolicyAnalyzer`). One analyser per language and a bounded
cache of each analyser's terms are kept per process.
"""

from __future__ import annotations

from store.index.analysis import WORD, PolicyAnalyzer


def analysed(analyser: str, text: str) -> str:
    """The index terms of ``text`` (:meth:`PolicyAnalyzer.terms`), joined by spaces.

    The same terms as the analyser's, faster: words are looked up in a cache of this
    analyser's terms in one pass (``map``), and only new words go through the analyser."""
    words = WORD.findall(text)
    cache = _TERMS.setdefault(analyser, {})
    terms = list(map(cache.get, words))
    if None in terms:
        if len(cache) > TERM_CACHE:
            cache.clear()
        term = analyser_for(analyser).term
        for i, found in enumerate(terms):
            if found is None:
                terms[i] = cache[words[i]] = term(words[i])
    return " ".join(terms)  # type: ignore[arg-type]


TERM_CACHE = 500_000
_TERMS: dict[str, dict[str, str]] = {}
_ANALYSERS: dict[str, PolicyAnalyzer] = {}


def analyser_for(lang: str) -> PolicyAnalyzer:
    found = _ANALYSERS.get(lang)
    if found is None:
        found = _ANALYSERS[lang] = PolicyAnalyzer(lang)
    return found


class PartTerms:
    """The index terms of sections, analysed part by part (:attr:`Section.parts`, which no
    word spans), each distinct part once per analyser: an edit changes one paragraph of a
    section, and its other paragraphs were analysed with the section's previous run. A
    bounded memory, one per indexer (or worker process)."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._seen: dict[str, dict[str, str]] = {}

    def terms(self, analyser: str, parts: tuple[str, ...]) -> str:
        """``analysed(analyser, "\\n\\n".join(parts))``."""
        seen = self._seen.setdefault(analyser, {})
        if len(seen) > self.limit:
            seen.clear()
        out = []
        for part in parts:
            found = seen.get(part)
            if found is None:
                found = seen[part] = analysed(analyser, part)
            if found:
                out.append(found)
        return " ".join(out)
