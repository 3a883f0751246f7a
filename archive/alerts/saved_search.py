"""Saved searches: does a version's text match a query?

A saved search alerts when a policy *starts* or *stops* matching, so it is judged on two texts
(the previous version and the new one) rather than through the index's ranked results.
Syntax, as in the search box: words must all occur (any order), ``"quoted phrases"`` must occur
as written, ``OR`` between terms accepts either, and ``-word`` / ``-"phrase"`` / ``NOT word``
must not occur. Matching is case-insensitive on whole words, ignoring punctuation.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from archive.alerts.errors import NotifyError

_WORD = re.compile(r"\w+")
_TERM = re.compile(r'(-?)"([^"]*)"|(\S+)')


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class SavedQuery:
    """A query as alternatives (OR) of conjunctions (AND) of terms."""

    alternatives: tuple[tuple[Term, ...], ...]


def words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def parse(query: str) -> SavedQuery:
    """Parse a saved-search query; raise :class:`NotifyError` when it matches nothing."""
    alternatives: list[tuple[Term, ...]] = []
    current: list[Term] = []
    negate_next = False
    for m in _TERM.finditer(query):
        sign, phrase, bare = m.group(1), m.group(2), m.group(3)
        if bare in ("OR", "|"):
            if current:
                alternatives.append(tuple(current))
            current = []
            continue
        if bare in ("AND", "&"):
            continue
        if bare == "NOT":
            negate_next = True
            continue
        negated = negate_next or bool(sign)
        if bare is not None and bare.startswith("-") and len(bare) > 1:
            negated, bare = True, bare[1:]
        found = tuple(words(phrase if bare is None else bare))
        negate_next = False
        if found:
            current.append(Term(found, negated))
    if current:
        alternatives.append(tuple(current))
    if not alternatives or all(all(t.negated for t in alt) for alt in alternatives):
        raise NotifyError(
            f"saved search {query!r} has no word to look for; use e.g. "
            '"sell your personal information"'
        )
    return SavedQuery(tuple(alternatives))


def _contains(haystack: list[str], needle: tuple[str, ...], first: dict[str, list[int]]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == list(needle) for i in first.get(needle[0], ()))


def matches(query: str | SavedQuery, text: str | None) -> bool:
    """Whether ``text`` (None: no version) matches ``query``."""
    if text is None:
        return False
    parsed = parse(query) if isinstance(query, str) else query
    tokens = words(text)
    positions: dict[str, list[int]] = {}
    for i, token in enumerate(tokens):
        positions.setdefault(token, []).append(i)
    for alternative in parsed.alternatives:
        positive = [t for t in alternative if not t.negated]
        if not positive:
            continue
        if all(_contains(tokens, t.words, positions) != t.negated for t in alternative):
            return True
    return False
