"""Our query model as tsquery: each word, prefix or phrase looked up per language searched.

Words are analysed by the project's analysers, per language of the policies searched, as the
other engines do (:mod:`store.index.postgresql.terms`): a word is its term (``'retent'``), a
phrase its terms at consecutive positions (``'30' <-> 'day'``), a prefix ``'retent':*``
(limited to :data:`~store.index.rules.MAX_EXPANSION` words of the vocabulary), a long word of a
language without a stemmer its inflections (``'isikuandmed' | 'isikuandmete' | ...``). In a
policy of a stemmed language other than the query's, the words are looked up in the folded,
unstemmed ``plain`` vector as the text's own words that the query's stemmer stems alike (the
rule of docs/decisions/0003, "mixed languages"). ``"a b"~N`` is found as ``'a' & 'b'`` and
then checked on the positions the rows carry (:func:`store.index.rules.near_count`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import psycopg

from store.index.analysis import PLAIN, fold
from store.index.postgresql.schema import SCHEMA
from store.index.postgresql.terms import analyser_for, any_of, prefix, sequence
from store.index.postgresql.writer import STEMMED_KIND, WORD_KIND
from store.index.query import Phrase, Prefix, QueryTooBroadError, Term
from store.index.rules import (
    INFLECTED,
    MAX_COMBINATIONS,
    MAX_EXPANSION,
    MAX_FORM_CANDIDATES,
    MIN_PREFIX,
)

Leafy = Term | Prefix | Phrase


@dataclass(frozen=True)
class Lookup:
    """A leaf in the sections of one analyser: the column searched, and either a prefix or
    the sequences of terms that stand for it (one per combination of forms)."""

    analyser: str
    column: str  # "terms" or "plain"
    combos: tuple[tuple[str, ...], ...]
    slop: int = 0
    prefix: str | None = None

    @property
    def tsquery(self) -> str:
        if self.prefix is not None:
            return prefix(self.prefix)
        exact = self.slop == 0
        parts = [sequence(c, exact) for c in self.combos]
        return parts[0] if len(parts) == 1 else any_of(parts)

    @property
    def positional(self) -> bool:
        """Whether a row's count needs its positions (a sequence of several words)."""
        return self.prefix is None and any(len(c) > 1 for c in self.combos)

    @property
    def terms(self) -> list[str]:
        return sorted({t for c in self.combos for t in c})

    @property
    def foreign(self) -> bool:
        return self.column == "plain"


class Vocabulary:
    """The index's words, for prefixes and forms (one query's memory of them)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self._seen: dict[tuple[str, str, str, int | None], list[str]] = {}

    def starting(self, lang: str, kind: str, start: str, limit: int | None = None) -> list[str]:
        key = (lang, kind, start, limit)
        found = self._seen.get(key)
        if found is None:
            rows = self.conn.execute(
                f"SELECT term FROM {SCHEMA}.vocabulary WHERE lang = %s AND kind = %s "
                "AND term >= %s AND term < %s ORDER BY term LIMIT %s",
                (lang, kind, start, start + "\U0010ffff", limit),
            ).fetchall()
            found = self._seen[key] = [r[0] for r in rows]
        return found


class Translator:
    """Leaves → :class:`Lookup` per analyser, for a query read in ``qlang``."""

    def __init__(self, vocabulary: Vocabulary, qlang: str) -> None:
        self.vocabulary = vocabulary
        self.qlang = qlang
        self._forms: dict[tuple[str, str], list[str]] = {}

    def lookup(self, node: Leafy, lang: str) -> Lookup | None:
        """``node`` in the sections of analyser ``lang``; None when it can match nothing."""
        foreign = lang != PLAIN and lang != self.qlang
        column = "plain" if foreign else "terms"
        kind = WORD_KIND if foreign else STEMMED_KIND
        if isinstance(node, Prefix):
            start = fold(node.text)
            if len(start) < MIN_PREFIX:
                raise QueryTooBroadError(
                    f"{node.text}* is too short a prefix: give at least {MIN_PREFIX} letters"
                )
            found = self.vocabulary.starting(lang, kind, start, MAX_EXPANSION + 1)
            if len(found) > MAX_EXPANSION:
                raise QueryTooBroadError(
                    f"{node.text}* matches more than {MAX_EXPANSION} different words; "
                    "type more letters before the *"
                )
            if not found:
                return None
            return Lookup(lang, column, tuple((t,) for t in found), prefix=start)
        slop = node.slop if isinstance(node, Phrase) else 0
        words = node.words if isinstance(node, Phrase) else (node.text,)
        if foreign:
            combos = [tuple(c) for c in self._combinations(lang, words) if c]
            return Lookup(lang, column, tuple(combos), slop) if combos else None
        analyser = analyser_for(lang)
        terms = tuple(t for w in words for t in analyser.terms(w))
        if not terms:
            return None
        inflected = isinstance(node, Term) and len(node.text) >= INFLECTED and lang == PLAIN
        if inflected and len(terms) == 1:
            term = terms[0]
            stem = term[: max(INFLECTED - 1, len(term) - 2)]
            forms = {term} | {
                t for t in self.vocabulary.starting(lang, kind, stem) if len(t) <= len(term) + 3
            }
            return Lookup(lang, column, tuple((f,) for f in sorted(forms)))
        return Lookup(lang, column, (terms,), slop)

    def forms(self, lang: str, word: str) -> list[str]:
        """The folded words of ``lang``'s texts that the query's language stems as it stems
        ``word`` (English ``arbitration``: ``arbitrators``; ``data``: not ``date``)."""
        key = (lang, word)
        cached = self._forms.get(key)
        if cached is None:
            analyser = analyser_for(self.qlang)
            start = analyser.form_prefix(word)
            candidates = self.vocabulary.starting(lang, WORD_KIND, start, MAX_FORM_CANDIDATES + 1)
            cached = self._forms[key] = analyser.same_stem(word, candidates)
        return cached

    def _combinations(self, lang: str, words: tuple[str, ...]) -> list[list[str]]:
        """Each word one of its forms (at most ``MAX_COMBINATIONS`` sequences; beyond, each
        word as written), as the other engines do."""
        plain = analyser_for(PLAIN)
        if len(words) == 1:
            folded = plain.terms(words[0])
            if len(folded) != 1:
                return [folded]
            return [[form] for form in self.forms(lang, words[0])]
        choices: list[list[str]] = []
        for word in words:
            folded = plain.terms(word)
            if len(folded) == 1:
                choices.append(self.forms(lang, word) or folded)
            else:
                choices.extend([t] for t in folded)
        if math.prod(len(c) for c in choices) > MAX_COMBINATIONS:
            return [[t for w in words for t in plain.terms(w)]]
        return [list(c) for c in itertools.product(*choices)]
