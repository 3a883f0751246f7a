"""Does one text match a query? The search box's meaning, for a text that is not searched.

A saved-search alert is judged on two texts (a policy's previous version and its new one), not
through the index's ranked hits; this module gives such a text exactly the meaning the search
box gives a version in the index, so a saved search means what the search page means:

- the query is the tree :func:`archive.search.parse_query` reads;
- the text is analysed as the index analyses the policy: the stemmer of its language (plain
  words where there is none), accents folded, and word for word;
- the query's words are read in the query's language
  (:func:`store.index.analysis.query_language`: its ``lang:``, else its stop words, else
  English): in a text of that language (or of one without a stemmer) a word matches if one of
  the text's analysed words equals it (in a language without a stemmer, a long word also finds
  its inflections, as in the index); in a text of another stemmed language it matches the
  text's words that the query's language stems alike (``arbitration``: ``Arbitrators``, not
  ``data``: ``date``); ``retent*`` matches words starting with ``retent``; a phrase matches
  words next to each other (or within ``~N``) within one section of the text
  (:func:`store.index.sections.split_sections`), across its paragraph breaks;
  ``AND``/``OR``/``NOT`` hold over the whole text; ``service:``, ``type:`` and ``lang:`` are
  decided by the policy the text belongs to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

from store.index import And, FieldMatch, MatchAll, Node, Not, Or, Phrase, Prefix, Term
from store.index.analysis import (
    PLAIN,
    PolicyAnalyzer,
    detect_language,
    field_language,
    fold,
    query_language,
)
from store.index.query import query_lang_filter, query_words
from store.index.rules import INFLECTED, MAX_COMBINATIONS, near_count
from store.index.sections import split_sections

__all__ = ["PolicyText", "index_language", "matches"]


def index_language(known: str | None, first_text: str | None) -> str | None:
    """The language the index analyses a policy in: the one the archive knows (config, import;
    :func:`archive.search.language_resolver`), else the one guessed from the text of its first
    version, as the index's writer guesses it."""
    return known or detect_language(first_text or "")


@dataclass(frozen=True)
class PolicyText:
    """A text of a policy, as the index would hold it.

    ``lang`` is the language the index records for the policy (its configured or imported
    language, else the one guessed from its text); None: no language known.
    """

    service: str
    type: str
    text: str
    lang: str | None = None

    @cached_property
    def analyser(self) -> PolicyAnalyzer:
        """The index's analyser for this text's language."""
        return PolicyAnalyzer(field_language(self.lang))

    def terms(self, words: str) -> list[str]:
        """Words (of the text, or of a query) as the index holds them."""
        return self.analyser.terms(words)

    @property
    def stemmed(self) -> bool:
        return self.analyser.lang != PLAIN

    @cached_property
    def vocabulary(self) -> frozenset[str]:
        return frozenset(self.terms(self.text))

    @cached_property
    def sections(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(self.terms(s.text)) for s in split_sections(self.text))

    @cached_property
    def words(self) -> frozenset[str]:
        """The text's words, folded (not stemmed)."""
        return frozenset(_PLAIN.terms(self.text))

    @cached_property
    def word_sections(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(_PLAIN.terms(s.text)) for s in split_sections(self.text))


_PLAIN = PolicyAnalyzer(PLAIN)


@lru_cache(maxsize=256)
def _analyser(lang: str) -> PolicyAnalyzer:
    return PolicyAnalyzer(lang)


def matches(tree: Node, text: PolicyText | None) -> bool:
    """Whether ``text`` (None: no version, e.g. before a first record) matches ``tree``."""
    if text is None:
        return False
    qlang = query_language(query_words(tree), query_lang_filter(tree))
    foreign = text.stemmed and text.analyser.lang != qlang
    return _holds(tree, text, _analyser(qlang) if foreign else None)


def _holds(node: Node, text: PolicyText, foreign: PolicyAnalyzer | None) -> bool:
    """``foreign``: the query's analyser, when the text is in another stemmed language."""
    if isinstance(node, MatchAll):
        return True
    if isinstance(node, FieldMatch):
        return _field(node, text)
    if isinstance(node, Term):
        if foreign is None:
            return _word(node.text, text)
        return _foreign_word(node.text, text, foreign)
    if isinstance(node, Prefix):
        start = fold(node.text)
        vocabulary = text.vocabulary if foreign is None else text.words
        return any(term.startswith(start) for term in vocabulary)
    if isinstance(node, Phrase):
        if foreign is None:
            terms = [t for w in node.words for t in text.terms(w)]
            return _phrase([{t} for t in terms], text.sections, text.vocabulary, node.slop)
        choices = _choices(node.words, text, foreign)
        return _phrase(choices, text.word_sections, text.words, node.slop)
    if isinstance(node, And):
        return all(_holds(child, text, foreign) for child in node.children)
    if isinstance(node, Or):
        return any(_holds(child, text, foreign) for child in node.children)
    if isinstance(node, Not):
        return not _holds(node.child, text, foreign)
    raise TypeError(f"not a query node: {node!r}")


def _field(node: FieldMatch, text: PolicyText) -> bool:
    want = node.value.casefold()
    candidates: tuple[str, ...]
    if node.name == "lang":
        value = (text.lang or "").casefold()
        candidates = (value, value.split("-")[0])  # lang:fr finds fr-CA
    else:
        candidates = ((text.service if node.name == "service" else text.type).casefold(),)
    return any(v.startswith(want) if node.prefix else v == want for v in candidates)


def _forms(word: str, text: PolicyText, query: PolicyAnalyzer) -> list[str]:
    """The text's words the query's analyser stems as ``word`` (as the index's
    :meth:`~store.index.whoosh.matching.Evaluator.forms`)."""
    prefix = query.form_prefix(word)
    return query.same_stem(word, (w for w in text.words if w.startswith(prefix)))


def _foreign_word(word: str, text: PolicyText, query: PolicyAnalyzer) -> bool:
    folded = _PLAIN.terms(word)
    if len(folded) != 1:
        return _phrase([{t} for t in folded], text.word_sections, text.words)
    return bool(_forms(word, text, query))


def _choices(words: tuple[str, ...], text: PolicyText, query: PolicyAnalyzer) -> list[set[str]]:
    """A phrase in a text of another language: each word one of its forms, as the index's
    ``_combinations`` (beyond ``MAX_COMBINATIONS`` phrases, the words as written)."""
    choices: list[set[str]] = []
    for word in words:
        folded = _PLAIN.terms(word)
        if len(folded) == 1:
            choices.append(set(_forms(word, text, query)) or set(folded))
        else:
            choices.extend({t} for t in folded)
    if math.prod(len(c) for c in choices) > MAX_COMBINATIONS:
        return [{t} for w in words for t in _PLAIN.terms(w)]
    return choices


def _word(word: str, text: PolicyText) -> bool:
    terms = text.terms(word)
    if len(word) < INFLECTED or text.stemmed or len(terms) != 1:
        if len(terms) == 1:
            return terms[0] in text.vocabulary
        return _phrase([{t} for t in terms], text.sections, text.vocabulary)
    # No stemmer: the word and the words sharing all but its last two letters and at most
    # three more letters (``isikuandmed`` also finds ``isikuandmete``), as the index does.
    term = terms[0]
    stem = term[: max(INFLECTED - 1, len(term) - 2)]
    return any(t.startswith(stem) and len(t) <= len(term) + 3 for t in text.vocabulary)


def _phrase(
    choices: list[set[str]],
    sections: tuple[tuple[str, ...], ...],
    vocabulary: frozenset[str],
    slop: int = 0,
) -> bool:
    """Whether one section holds a word of each of ``choices`` in order, next to each other
    (or with at most ``slop`` other words between them in all)."""
    if not choices or any(c.isdisjoint(vocabulary) for c in choices):
        return False
    for section in sections:
        positions = [[i for i, t in enumerate(section) if t in c] for c in choices]
        if not all(positions):
            continue
        if slop:
            if near_count(positions, slop):
                return True
            continue
        rest = [set(p) for p in positions[1:]]
        if any(all(p + k in s for k, s in enumerate(rest, 1)) for p in positions[0]):
            return True
    return False
