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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from whoosh import query as wq
from whoosh.searching import Searcher

from store.index.analysis import PLAIN, PolicyAnalyzer, fold
from store.index.budget import Budget
from store.index.catalog import Catalog, PolicyInfo, SegmentView
from store.index.postings import Masks, Posting, collect, read_all, read_only, read_phrase
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
from store.index.schema import CURRENT, PAST, WORDS, text_field

K1, B = 1.2, 0.75
MAX_EXPANSION = 128
MIN_PREFIX = 2
INFLECTED = 6


@dataclass
class Leaf:
    """A positive leaf: its weight, its matches (for scoring and snippets) and its index terms
    per language (for highlighting). A leaf matched in words documents also keeps its terms
    with the current-section field to find them in for snippets."""

    idf: float
    terms: dict[str, set[str]] = field(default_factory=dict)  # analyser -> terms
    in_sections: list[tuple[str, str]] = field(default_factory=list)  # (cur_ field, term)
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
            for child in node.children:
                for pid, mask in self.evaluate(child, cand, positive).items():
                    out[pid] = out.get(pid, 0) | mask
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
        want = node.value.casefold()
        out: Masks = {}
        for pid, mask in (self.allowed if cand is None else cand).items():
            info = self.catalog.policies[pid]
            if node.name == "lang":
                bits = 0
                for seq, lang in enumerate(info.langs):
                    value = (lang or "").casefold()
                    if _matches(value, want, node.prefix) or _matches(
                        value.split("-")[0], want, node.prefix
                    ):
                        bits |= 1 << seq
                mask &= bits
            else:
                value = info.service if node.name == "service" else info.type
                if not _matches(value.casefold(), want, node.prefix):
                    continue
            if mask:
                out[pid] = mask
        return out

    # ------------------------------------------------------------------ leaves

    def _analyser(self, lang: str) -> PolicyAnalyzer:
        analyzer = self.searcher.schema[text_field(lang, CURRENT)].analyzer
        assert isinstance(analyzer, PolicyAnalyzer)
        return analyzer

    def _term_plan(self, word: str) -> Iterator[tuple[str, str | tuple[str, ...]]]:
        """(field, term) for a word read as one term, (field, terms) for one that analyses
        into several (``e-mail``), in every field the word is looked up in."""
        for lang in self.langs:
            terms = tuple(self._analyser(lang).terms(word))
            if len(terms) == 1:
                tiers = (WORDS,) if self.current_only else self.section_tiers
                for tier in tiers:
                    yield text_field(lang, tier), terms[0]
            elif terms:
                for tier in self.section_tiers:
                    yield text_field(lang, tier), terms

    def _leaf(self, node: Term | Prefix | Phrase, cand: Masks | None, positive: bool) -> Masks:
        leaf = Leaf(0.0)
        queries: list[tuple[str, wq.Query]] = []
        if isinstance(node, Prefix):
            df = self._prefix(node, leaf, queries)
        elif isinstance(node, Term) and len(node.text) >= INFLECTED:
            df = self._word(node.text, leaf, queries)
        else:
            df = self._phrase(
                node.words if isinstance(node, Phrase) else (node.text,), leaf, queries
            )
        words = any(name.startswith(WORDS) for name, _ in queries)
        n = self.words_n if words else self.sections_n
        df = min(df, n)
        leaf.idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        out: Masks = {}
        for name, q in queries:
            self._scan(name, q, cand, out, leaf)
        if positive:
            self.leaves.append(leaf)
        return out

    def _terms(self, lang: str, terms: Sequence[str], leaf: Leaf, queries: list) -> float:
        """Queries for analysed ``terms`` (one word, or a phrase) in one language; returns the
        number of documents that may match (for idf)."""
        if not terms:
            return 0
        leaf.terms.setdefault(lang, set()).update(terms)
        if len(terms) == 1:
            tiers = (WORDS,) if self.current_only else self.section_tiers
            for tier in tiers:
                name = text_field(lang, tier)
                queries.append((name, wq.Term(name, terms[0])))
            if self.current_only:
                leaf.in_sections.append((text_field(lang, CURRENT), terms[0]))
        else:
            tiers = self.section_tiers
            for tier in tiers:
                name = text_field(lang, tier)
                queries.append((name, wq.Phrase(name, list(terms))))
        return sum(min(self.df(text_field(lang, tier), t) for t in terms) for tier in tiers)

    def df(self, name: str, term: str) -> float:
        """Live documents of field ``name`` holding ``term``. whoosh counts deleted documents
        until a merge drops them (each change deletes a words document), so each segment's
        count is scaled by the share of its documents of that kind still live."""
        kind = 1 if name.startswith(WORDS) else 0
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
        tiers = (WORDS,) if self.current_only else self.section_tiers
        for lang in self.langs:
            expanded: set[str] = set()
            for tier in tiers:
                expanded |= self._expand(text_field(lang, tier), prefix, limit=MAX_EXPANSION)
                if len(expanded) > MAX_EXPANSION:
                    raise QueryTooBroadError(
                        f"{node.text}* matches more than {MAX_EXPANSION} different words; "
                        "type more letters before the *"
                    )
            for term in sorted(expanded):
                df = max(df, self._terms(lang, [term], leaf, queries))
        return df

    def _expand(self, name: str, prefix: str, limit: int) -> set[str]:
        found: set[str] = set()
        for term in self.reader.expand_prefix(name, prefix):
            found.add(term.decode("utf-8") if isinstance(term, bytes) else term)
            if len(found) > limit:
                break
        return found

    def _word(self, word: str, leaf: Leaf, queries: list) -> float:
        """A long word: in languages without a stemmer, also its inflections (the word and
        the words sharing all but its last two letters and at most three more letters:
        ``isikuandmed`` also finds ``isikuandmete``, ``isikuandmeid``)."""
        df = 0.0
        for lang in self.langs:
            terms = self._analyser(lang).terms(word)
            if lang != PLAIN or len(terms) != 1:
                df = max(df, self._terms(lang, terms, leaf, queries))
                continue
            term = terms[0]
            stem = term[: max(INFLECTED - 1, len(term) - 2)]
            tiers = (WORDS,) if self.current_only else self.section_tiers
            forms = {term}
            for tier in tiers:
                forms |= {
                    t
                    for t in self._expand(text_field(lang, tier), stem, MAX_EXPANSION)
                    if len(t) <= len(term) + 3
                }
            for form in sorted(forms):
                df = max(df, self._terms(lang, [form], leaf, queries))
        return df

    def _phrase(self, words: Sequence[str], leaf: Leaf, queries: list) -> float:
        df = 0.0
        for lang in self.langs:
            terms = [t for w in words for t in self._analyser(lang).terms(w)]
            df = max(df, self._terms(lang, terms, leaf, queries))
        return df

    # ------------------------------------------------------------------ postings

    def _scan(self, name: str, q: wq.Query, cand: Masks | None, out: Masks, leaf: Leaf) -> None:
        base = self.allowed if cand is None else cand
        words = name.startswith(WORDS)
        for seg, (sub, view) in enumerate(zip(self.subs, self.catalog.segments, strict=True)):
            reader = sub.reader()
            if isinstance(q, wq.Phrase):
                rarest = min(reader.doc_frequency(name, t) for t in q.words)
                docs = None
                if cand is not None and self._few(cand, view, rarest, words):
                    docs = self._docs(cand, view, words)
                blocks = read_phrase(
                    reader, name, list(q.words), self.deadline, docs, self._settled(view, base, out)
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


def _matches(value: str, want: str, prefix: bool) -> bool:
    return value.startswith(want) if prefix else value == want


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
