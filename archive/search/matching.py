"""Does one text match a query? The search box's meaning, for a text that is not searched.

A saved-search alert is judged on two texts (a policy's previous version and its new one), not
through the index's ranked hits; this module gives such a text exactly the meaning the search
box gives a version in the index, so a saved search means what the search page means:

- the query is the tree :func:`archive.search.parse_query` reads;
- the text is analysed as the index analyses the policy: the stemmer of its language (plain
  words where there is none), accents folded;
- a word matches if one of the text's analysed words equals it (in a language without a stemmer,
  a long word also finds its inflections, as in the index); ``retent*`` matches analysed words
  starting with ``retent``; a phrase matches words next to each other within one section of the
  text (:func:`store.index.sections.split_sections`); ``AND``/``OR``/``NOT`` hold over the whole
  text; ``service:``, ``type:`` and ``lang:`` are decided by the policy the text belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from store.index import And, FieldMatch, MatchAll, Node, Not, Or, Phrase, Prefix, Term
from store.index.analysis import PLAIN, PolicyAnalyzer, detect_language, field_language, fold
from store.index.matching import INFLECTED
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


def matches(tree: Node, text: PolicyText | None) -> bool:
    """Whether ``text`` (None: no version, e.g. before a first record) matches ``tree``."""
    return text is not None and _holds(tree, text)


def _holds(node: Node, text: PolicyText) -> bool:
    if isinstance(node, MatchAll):
        return True
    if isinstance(node, FieldMatch):
        return _field(node, text)
    if isinstance(node, Term):
        return _word(node.text, text)
    if isinstance(node, Prefix):
        start = fold(node.text)
        return any(term.startswith(start) for term in text.vocabulary)
    if isinstance(node, Phrase):
        return _phrase([t for w in node.words for t in text.terms(w)], text)
    if isinstance(node, And):
        return all(_holds(child, text) for child in node.children)
    if isinstance(node, Or):
        return any(_holds(child, text) for child in node.children)
    if isinstance(node, Not):
        return not _holds(node.child, text)
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


def _word(word: str, text: PolicyText) -> bool:
    terms = text.terms(word)
    if len(word) < INFLECTED or text.stemmed or len(terms) != 1:
        return _phrase(terms, text)
    # No stemmer: the word and the words sharing all but its last two letters and at most
    # three more letters (``isikuandmed`` also finds ``isikuandmete``), as the index does.
    term = terms[0]
    stem = term[: max(INFLECTED - 1, len(term) - 2)]
    return any(t.startswith(stem) and len(t) <= len(term) + 3 for t in text.vocabulary)


def _phrase(terms: list[str], text: PolicyText) -> bool:
    if not terms:
        return False
    if len(terms) == 1:
        return terms[0] in text.vocabulary
    if not set(terms) <= text.vocabulary:
        return False
    n = len(terms)
    wanted = tuple(terms)
    return any(
        section[i : i + n] == wanted
        for section in text.sections
        for i in range(len(section) - n + 1)
        if section[i] == wanted[0]
    )
