"""Index terms as PostgreSQL sees them: tsvector and tsquery literals of the project's terms.

The text is analysed in Python by the project's analysers (:mod:`store.index.analysis`), as
the other engines do, and handed to PostgreSQL as tsvector literals (``'term':1,4 'other':2``)
with the positions of the words in their section. So all engines index the same terms, and a
phrase is the same words at consecutive positions, across a section's paragraph breaks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from store.index.analysis import WORD, PolicyAnalyzer

MAX_POSITIONS = 256  # PostgreSQL keeps at most this many positions of a lexeme per tsvector
MAX_POSITION = 16383
TERM_CACHE = 500_000

_ANALYSERS: dict[str, PolicyAnalyzer] = {}
_TERMS: dict[str, dict[str, str]] = {}


def analyser_for(lang: str) -> PolicyAnalyzer:
    found = _ANALYSERS.get(lang)
    if found is None:
        found = _ANALYSERS[lang] = PolicyAnalyzer(lang)
    return found


def analysed(analyser: str, text: str) -> list[str]:
    """The index terms of ``text`` (:meth:`PolicyAnalyzer.terms`), through a per-process
    cache of each analyser's words (what indexing mostly costs)."""
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
    return terms  # type: ignore[return-value]


def quote(term: str) -> str:
    """A lexeme as a tsvector or tsquery literal."""
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector(terms: Sequence[str]) -> str:
    """The tsvector literal of ``terms`` at positions 1, 2, ..."""
    positions: dict[str, list[str]] = {}
    for pos, term in enumerate(terms, 1):
        at = positions.setdefault(term, [])
        if len(at) < MAX_POSITIONS:
            at.append(str(min(pos, MAX_POSITION)))
    return " ".join(f"{quote(t)}:{','.join(p)}" for t, p in positions.items())


def sequence(terms: Sequence[str], exact: bool) -> str:
    """A tsquery for words in this order next to each other (``exact``), or all present."""
    glue = " <-> " if exact else " & "
    return "(" + glue.join(quote(t) for t in terms) + ")"


def any_of(queries: Iterable[str]) -> str:
    return "(" + " | ".join(queries) + ")"


def prefix(text: str) -> str:
    return quote(text) + ":*"
