"""Evaluate a query tree with document-level meaning, and score the versions.

Each leaf (a word, a prefix, a phrase) yields, per policy, the set of versions containing it
(a Python int used as a bit set, bit k for version k); ``AND``, ``OR`` and ``NOT`` are then set
operations per policy, which gives document-level meaning: all words of ``retention 30 days``
anywhere in the version, not necessarily in one section.

Where a leaf is looked up depends on what is searched:
- current versions only: words in the policies' words documents (one posting per policy),
  phrases in the sections of current versions (``cur_`` fields);
- history or dates: words and phrases in all sections (``cur_`` and ``old_``); a section that
  matches stands for the run of versions it stood in.

Inside an ``AND``, leaves are evaluated rarest first and later ones only look at the policies
still in the running, jumping through their postings (``skip_to``) when those are few.

A word is read in the query's language (:func:`~store.index.analysis.query_language`): in the
fields of that language, or of one without a stemmer, it is its stem (as written); in those of
another stemmed language it is the texts' own words that the query's stemmer stems alike,
looked up in the word-for-word twin fields (:meth:`Evaluator.forms`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from whoosh import query as wq
from whoosh.searching import Searcher

from store.index.analysis import DEFAULT_QUERY_LANGUAGE, PLAIN, PolicyAnalyzer, fold
from store.index.budget import Budget
from store.index.policies import PolicyInfo, field_masks
from store.index.query import (
    And,
    FieldMatch,
    MatchAll,
    Node,
    Not,
    Or,
    Phrase,
    Prefix,
    QueryTooBroadError,
    Term,
)
from store.index.rules import (
    INFLECTED,
    K1,
    MAX_COMBINATIONS,
    MAX_EXPANSION,
    MAX_FORM_CANDIDATES,
    MIN_PREFIX,
    B,
)
from store.index.whoosh.catalog import Catalog, SegmentView
from store.index.whoosh.postings import Masks, Posting, collect, read_all, read_only, read_phrase
from store.index.whoosh.schema import (
    CURRENT,
    PAST,
    WORDS,
    is_words_field,
    term_key,
    text_field,
    word_field,
)


@dataclass
class Leaf:
    """A positive leaf: its weight, its matches (for scoring and snippets) and its index terms
    per language and kind of field (:func:`~store.index.whoosh.schema.term_key`; for highlighting).
    A leaf matched in words documents also keeps its terms with the current-section field to
    find them in for snippets."""

    idf: float
    terms: dict[str, set[str]] = field(default_factory=dict)  # term_key -> terms
    in_sections: list[tuple[str, str]] = field(default_factory=list)  # (cur_ field, term)
    # a word's (section field, term) pairs, where its positions are (for proximity)
    section_terms: list[tuple[str, str]] = field(default_factory=list)
    required: bool = True  # not under an OR: every hit holds it (proximity counts it)
    postings: dict[int, list[Posting]] = field(default_factory=dict)


class Evaluator:
    """One query against one searcher and the catalog of the same index generation."""

    def __init__(
        self,
        searcher: Searcher,
        catalog: Catalog,
        langs: list[str],
        allowed: Masks,
        deadline: Budget,
        *,
        current_only: bool,
        qlang: str = DEFAULT_QUERY_LANGUAGE,
    ) -> None:
        self.searcher = searcher
        self.catalog = catalog
        self.langs = langs
        self.allowed = allowed
        self.deadline = deadline
        self.current_only = current_only
        self.leaves: list[Leaf] = []
        self.subs = [s for s, _ in searcher.leaf_searchers()]
        self.reader = searcher.reader()
        self.sections_n = max(catalog.sections, 1)
        self.words_n = max(catalog.words_docs, 1)
        self.section_tiers = (CURRENT,) if current_only else (CURRENT, PAST)
        self.qlang = qlang  # the query's language (:func:`~store.index.analysis.query_language`)
        # the schema's analysers: their caches of stems outlive the query
        self.qanalyser = self._analyser(qlang)
        self.plain = self._analyser(PLAIN)
        self._forms: dict[tuple[str, str], list[str]] = {}
        self._alternatives = 0  # depth of ORs being evaluated

    # ------------------------------------------------------------------ tree

    def evaluate(self, node: Node, cand: Masks | None = None, positive: bool = True) -> Masks:
        if isinstance(node, MatchAll):
            return dict(self.allowed if cand is None else cand)
        if isinstance(node, FieldMatch):
            return self._field(node, cand)
        if isinstance(node, Term | Prefix | Phrase):
            return self._leaf(node, cand, positive)
        if isinstance(node, And):
            return self._and(node, cand, positive)
        if isinstance(node, Or):
            out: Masks = {}
            self._alternatives += 1
            try:
                for child in node.children:
                    for pid, mask in self.evaluate(child, cand, positive).items():
                        out[pid] = out.get(pid, 0) | mask
            finally:
                self._alternatives -= 1
            return out
        if isinstance(node, Not):
            base = self.allowed if cand is None else cand
            excluded = self.evaluate(node.child, base, positive=False)
            return {p: m for p, m in ((p, m & ~excluded.get(p, 0)) for p, m in base.items()) if m}
        raise TypeError(f"not a query node: {node!r}")

    def _and(self, node: And, cand: Masks | None, positive: bool) -> Masks:
        children = sorted((c for c in node.children if not isinstance(c, Not)), key=self.cost) + [
            c for c in node.children if isinstance(c, Not)
        ]
        result = cand
        for child in children:
            if isinstance(child, Not):
                base = self.allowed if result is None else result
                excluded = self.evaluate(child.child, base, positive=False)
                result = {p: m & ~excluded.get(p, 0) for p, m in base.items()}
            else:
                found = self.evaluate(child, result, positive)
                if result is None:
                    result = found
                else:
                    result = {p: m & found[p] for p, m in result.items() if p in found}
            result = {p: m for p, m in result.items() if m}
        return result if result is not None else dict(self.allowed)

    def cost(self, node: Node) -> float:
        """Rough number of postings a node reads (to evaluate the cheapest first)."""
        if isinstance(node, FieldMatch | MatchAll):
            return 0
        if isinstance(node, Term):
            return (
                sum(self.df(f, t) for f, t in self._term_plan(node.text) if isinstance(t, str)) + 1
            )
        if isinstance(node, Phrase):
            return min((self.cost(Term(w)) for w in node.words), default=0)
        if isinstance(node, And):
            return min((self.cost(c) for c in node.children), default=0)
        if isinstance(node, Or):
            return sum(self.cost(c) for c in node.children)
        return self.sections_n

    # ------------------------------------------------------------------ fields

    def _field(self, node: FieldMatch, cand: Masks | None) -> Masks:
        return field_masks(self.catalog.policies, node, self.allowed if cand is None else cand)

    # ------------------------------------------------------------------ leaves

    def _analyser(self, lang: str) -> PolicyAnalyzer:
        analyzer = self.searcher.schema[text_field(lang, CURRENT)].analyzer
        assert isinstance(analyzer, PolicyAnalyzer)
        return analyzer

    def _foreign(self, lang: str) -> bool:
        """Whether words are looked up word for word in the fields of ``lang`` (a stemmed
        language other than the query's), rather than as that language's stems."""
        return lang != PLAIN and lang != self.qlang

    def _tiers(self) -> tuple[str, ...]:
        return (WORDS,) if self.current_only else self.section_tiers

    def _term_plan(self, word: str) -> Iterator[tuple[str, str | tuple[str, ...]]]:
        """(field, term) for a word read as one term, (field, terms) for one that analyses
        into several (``e-mail``), in every field the word is looked up in."""
        for lang in self.langs:
            foreign = self._foreign(lang)
            name_of = word_field if foreign else text_field
            terms = tuple((self.plain if foreign else self._analyser(lang)).terms(word))
            if len(terms) == 1:
                for tier in self._tiers():
                    yield name_of(lang, tier), terms[0]
            elif terms:
                for tier in self.section_tiers:
                    yield name_of(lang, tier), terms

    def _leaf(self, node: Term | Prefix | Phrase, cand: Masks | None, positive: bool) -> Masks:
        self.deadline.check()
        leaf = Leaf(0.0, required=not self._alternatives)
        queries: list[tuple[str, wq.Query]] = []
        if isinstance(node, Prefix):
            df = self._prefix(node, leaf, queries)
        elif isinstance(node, Term):
            df = self._word(node.text, leaf, queries)
        else:
            df = self._phrase(node.words, leaf, queries, node.slop)
        words = any(is_words_field(name) for name, _ in queries)
        n = self.words_n if words else self.sections_n
        df = min(df, n)
        leaf.idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        out: Masks = {}
        for name, q in queries:
            self._scan(name, q, cand, out, leaf)
        if positive:
            self.leaves.append(leaf)
        return out

    def _terms(
        self,
        lang: str,
        terms: Sequence[str],
        leaf: Leaf,
        queries: list,
        *,
        raw: bool = False,
        slop: int = 0,
        word: bool = False,
    ) -> float:
        """Queries for analysed ``terms`` (one word, or a phrase) in one language (``raw``:
        in its word-for-word fields); returns the number of documents that may match (for
        idf). ``word``: the terms stand for a word of the query (whose positions count for
        proximity)."""
        if not terms:
            return 0
        name_of = word_field if raw else text_field
        leaf.terms.setdefault(term_key(lang, raw), set()).update(terms)
        if len(terms) == 1:
            tiers = self._tiers()
            for tier in tiers:
                name = name_of(lang, tier)
                queries.append((name, wq.Term(name, terms[0])))
            if self.current_only:
                leaf.in_sections.append((name_of(lang, CURRENT), terms[0]))
            if word:
                leaf.section_terms.extend((name_of(lang, t), terms[0]) for t in self.section_tiers)
        else:
            tiers = self.section_tiers
            for tier in tiers:
                name = name_of(lang, tier)
                queries.append((name, wq.Phrase(name, list(terms), slop=slop + 1)))
        return sum(min(self.df(name_of(lang, tier), t) for t in terms) for tier in tiers)

    def df(self, name: str, term: str) -> float:
        """Live documents of field ``name`` holding ``term``. whoosh counts deleted documents
        until a merge drops them (each change deletes a words document), so each segment's
        count is scaled by the share of its documents of that kind still live."""
        kind = 1 if is_words_field(name) else 0
        return sum(
            sub.reader().doc_frequency(name, term) * view.live_share[kind]
            for sub, view in zip(self.subs, self.catalog.segments, strict=True)
        )

    def _prefix(self, node: Prefix, leaf: Leaf, queries: list) -> float:
        prefix = fold(node.text)
        if len(prefix) < MIN_PREFIX:
            raise QueryTooBroadError(
                f"{node.text}* is too short a prefix: give at least {MIN_PREFIX} letters"
            )
        df = 0.0
        for lang in self.langs:
            raw = self._foreign(lang)
            name_of = word_field if raw else text_field
            expanded: set[str] = set()
            for tier in self._tiers():
                expanded |= self._expand(name_of(lang, tier), prefix, limit=MAX_EXPANSION)
                if len(expanded) > MAX_EXPANSION:
                    raise QueryTooBroadError(
                        f"{node.text}* matches more than {MAX_EXPANSION} different words; "
                        "type more letters before the *"
                    )
            for term in sorted(expanded):
                df = max(df, self._terms(lang, [term], leaf, queries, raw=raw, word=True))
        return df

    def _expand(self, name: str, prefix: str, limit: int) -> set[str]:
        found: set[str] = set()
        for term in self.reader.expand_prefix(name, prefix):
            found.add(term.decode("utf-8") if isinstance(term, bytes) else term)
            if len(found) > limit:
                break
        return found

    def forms(self, lang: str, word: str) -> list[str]:
        """The words of the texts of ``lang`` (folded) that the query's language stems as it
        stems ``word`` (English ``arbitration``: ``arbitrators``, ``arbitre``; ``data``: not
        ``date``): how a word is looked up in a policy of another stemmed language."""
        key = (lang, word)
        cached = self._forms.get(key)
        if cached is not None:
            return cached
        prefix = self.qanalyser.form_prefix(word)
        candidates: set[str] = set()
        for tier in self._tiers():
            candidates |= self._expand(word_field(lang, tier), prefix, MAX_FORM_CANDIDATES)
        found = self.qanalyser.same_stem(word, candidates)
        self._forms[key] = found
        return found

    def _word(self, word: str, leaf: Leaf, queries: list) -> float:
        """One word, in each language: its stem (the query's language), its forms (another
        stemmed language: :meth:`forms`), or as written (no stemmer); there a word of
        ``INFLECTED`` letters or more also finds its inflections (the words sharing all but its
        last two letters and at most three more letters: ``isikuandmed`` also finds
        ``isikuandmete``, ``isikuandmeid``)."""
        df = 0.0
        for lang in self.langs:
            if self._foreign(lang):
                folded = self.plain.terms(word)
                if len(folded) != 1:
                    df = max(df, self._terms(lang, folded, leaf, queries, raw=True))
                    continue
                for form in self.forms(lang, word):
                    df = max(df, self._terms(lang, [form], leaf, queries, raw=True, word=True))
                continue
            terms = self._analyser(lang).terms(word)
            if lang != PLAIN or len(terms) != 1 or len(word) < INFLECTED:
                df = max(df, self._terms(lang, terms, leaf, queries, word=True))
                continue
            term = terms[0]
            stem = term[: max(INFLECTED - 1, len(term) - 2)]
            forms = {term}
            for tier in self._tiers():
                forms |= {
                    t
                    for t in self._expand(text_field(lang, tier), stem, MAX_EXPANSION)
                    if len(t) <= len(term) + 3
                }
            for form in sorted(forms):
                df = max(df, self._terms(lang, [form], leaf, queries, word=True))
        return df

    def _phrase(self, words: Sequence[str], leaf: Leaf, queries: list, slop: int = 0) -> float:
        df = 0.0
        for lang in self.langs:
            if not self._foreign(lang):
                terms = [t for w in words for t in self._analyser(lang).terms(w)]
                df = max(df, self._terms(lang, terms, leaf, queries, slop=slop))
                continue
            for combo in self._combinations(lang, words):
                df = max(df, self._terms(lang, combo, leaf, queries, raw=True, slop=slop))
        return df

    def _combinations(self, lang: str, words: Sequence[str]) -> list[list[str]]:
        """A phrase in a policy of another language: each word one of its forms (at most
        ``MAX_COMBINATIONS`` phrases; beyond, each word as written)."""
        choices: list[list[str]] = []
        for word in words:
            folded = self.plain.terms(word)
            if len(folded) == 1:
                choices.append(self.forms(lang, word) or folded)
            else:
                choices.extend([t] for t in folded)
        if math.prod(len(c) for c in choices) > MAX_COMBINATIONS:
            return [[t for w in words for t in self.plain.terms(w)]]
        return [list(c) for c in itertools.product(*choices)]

    # ------------------------------------------------------------------ postings

    def _scan(self, name: str, q: wq.Query, cand: Masks | None, out: Masks, leaf: Leaf) -> None:
        base = self.allowed if cand is None else cand
        words = is_words_field(name)
        for seg, (sub, view) in enumerate(zip(self.subs, self.catalog.segments, strict=True)):
            reader = sub.reader()
            if isinstance(q, wq.Phrase):
                rarest = min(reader.doc_frequency(name, t) for t in q.words)
                docs = None
                if cand is not None and self._few(cand, view, rarest, words):
                    docs = self._docs(cand, view, words)
                blocks = read_phrase(
                    reader,
                    name,
                    list(q.words),
                    self.deadline,
                    docs,
                    self._settled(view, base, out),
                    slop=q.slop - 1,
                )
                collect(blocks, seg, view, self.catalog.latest, base, out, leaf.postings)
                continue
            assert isinstance(q, wq.Term)
            if (name, q.text) not in reader:
                continue
            matcher = reader.postings(name, q.text)
            if not matcher.is_active():
                continue
            df = reader.doc_frequency(name, q.text)
            if cand is not None and self._few(cand, view, df, words):
                blocks = read_only(matcher, self._docs(cand, view, words), self.deadline)
            else:
                jump = None if words else self._settled(view, base, out)
                blocks = read_all(matcher, self.deadline, jump)
            collect(blocks, seg, view, self.catalog.latest, base, out, leaf.postings)

    @staticmethod
    def _settled(view: SegmentView, base: Masks, out: Masks) -> Callable[[int], int | None]:
        """After ``docnum``: once every version searched of its policy matches (or none is
        searched), the next document worth reading is the first after the policy's sections
        (if they are contiguous). Only the score of a past version can lose by it: the later
        sections of a settled policy would only add to term counts."""

        def jump(docnum: int) -> int | None:
            pid = view.pid[docnum]
            wanted = base.get(pid, 0)
            if out.get(pid, 0) & wanted != wanted:
                return None
            return view.after_pid.get(pid)

        return jump

    @staticmethod
    def _docs(cand: Masks, view: SegmentView, words: bool) -> list[int]:
        if words:
            return sorted(d for pid in cand if (d := view.bag_of.get(pid)) is not None)
        return sorted(d for pid in cand for d in view.docs_by_pid.get(pid, ()))

    @staticmethod
    def _few(cand: Masks, view: SegmentView, df: int, words: bool) -> bool:
        if words:
            return len(cand) * 8 <= df
        docs = 0
        for pid in cand:
            docs += len(view.docs_by_pid.get(pid, ()))
            if docs * 8 > df:
                return False
        return True

    def sections_matching(
        self, hits: list[tuple[int, int]]
    ) -> dict[int, dict[tuple[int, int], tuple[set[int], float]]]:
        """For each hit (pid, version), the sections of that version that match positive
        leaves: {(segment, docnum): (indexes of the leaves matched, total weight)}."""
        found: dict[int, dict[tuple[int, int], tuple[set[int], float]]] = {p: {} for p, _ in hits}

        def note(pid: int, seg: int, docnum: int, i: int, weight: float) -> None:
            leaves, total = found[pid].get((seg, docnum), (set(), 0.0))
            leaves.add(i)
            found[pid][(seg, docnum)] = (leaves, total + weight)

        for i, leaf in enumerate(self.leaves):
            for pid, seq in hits:  # matched in sections already
                for first, last, weight, seg, docnum in leaf.postings.get(pid, ()):
                    view = self.catalog.segments[seg]
                    if first <= seq <= last and view.bag_of.get(pid) != docnum:
                        note(pid, seg, docnum, i, weight)
            if not leaf.in_sections:
                continue
            for seg, (sub, view) in enumerate(zip(self.subs, self.catalog.segments, strict=True)):
                owner = {
                    d: pid
                    for pid, seq in hits
                    for d in view.docs_by_pid.get(pid, ())
                    if view.first[d] <= seq <= self.catalog.last(view, d)
                }
                if not owner:
                    continue
                docs = sorted(owner)
                reader = sub.reader()
                for name, term in leaf.in_sections:
                    if (name, term) not in reader:
                        continue
                    for ids, weights in read_only(reader.postings(name, term), docs, self.deadline):
                        for d, w in zip(ids, weights, strict=True):
                            note(owner[d], seg, d, i, w)
        return found


def bm25(leaves: list[Leaf], pid: int, seq: int, info: PolicyInfo, avg: float) -> float:
    """BM25 of version ``seq`` of a policy: term counts summed over what stands for it."""
    length = info.ntoks[seq] if seq < len(info.ntoks) else avg
    norm = K1 * (1 - B + B * length / max(avg, 1.0))
    score = 0.0
    for leaf in leaves:
        tf = sum(p[2] for p in leaf.postings.get(pid, ()) if p[0] <= seq <= p[1])
        if tf:
            score += leaf.idf * tf * (K1 + 1) / (tf + norm)
    return score
