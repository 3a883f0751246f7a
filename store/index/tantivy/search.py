"""Evaluate a query tree on a tantivy index, with the whoosh engine's document-level meaning.

Words are analysed by the project's analysers (the index holds their terms), per language of
the policies searched, so both engines match the same words; prefixes and the inflections of
long words in languages without a stemmer expand against the index's own terms, with the same
limits (:mod:`store.index.rules`).

- **Current versions** (the default): the tree becomes one tantivy boolean query on the
  policies' ``cur`` documents (one per policy, its current text, one value per section, so an
  exact phrase stays inside a section), ranked by tantivy's BM25; tantivy runs it without
  holding the GIL.
- **History or dates**: each leaf is looked up in the section documents; a matching section
  stands for the run of versions it stood in (from the catalog), so a leaf gives, per policy,
  the set of versions containing it (an int as a bit set) and AND, OR and NOT are set operations
  per policy, as in the whoosh engine, and a hit's score is its version's BM25 computed as the
  whoosh engine does (:func:`history_scores`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import tantivy

from store.index.analysis import PLAIN, fold
from store.index.budget import Budget
from store.index.highlight import highlight
from store.index.page import result_page
from store.index.policies import Masks, node_masks
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
    SearchQuery,
    SearchResults,
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
from store.index.tantivy.catalog import Catalog
from store.index.tantivy.schema import CUR, CUR_TIER, SEC, SEC_TIER, text_field, word_field
from store.index.tantivy.snippets import Section, best_sections, opening
from store.index.tantivy.terms import analyser_for

MUST, SHOULD, MUST_NOT = tantivy.Occur.Must, tantivy.Occur.Should, tantivy.Occur.MustNot
ONE_OF_TIE = 0.1  # how much the other forms of a word count beside its best one
TRY_SECTIONS = 4  # sections tried for a snippet with a highlighted word


@dataclass
class Leaf:
    """A positive leaf: the node, its index terms per analyser (for highlighting) and, in
    history searches, its matching sections per policy: (first, last, score, run, address)."""

    node: Term | Prefix | Phrase
    terms: dict[tuple[str, bool], set[str]] = field(default_factory=dict)  # (lang, word for word)
    postings: dict[int, list[tuple[int, int, float, int, tantivy.DocAddress]]] = field(
        default_factory=dict
    )


class Evaluation:
    """One query against the searchers of ``sections/`` and ``current/`` and the catalog read
    from that of ``sections/``."""

    def __init__(
        self,
        searcher: tantivy.Searcher,
        current: tantivy.Searcher,
        schema: tantivy.Schema,
        catalog: Catalog,
        budget: Budget,
        langs: list[str],
        qlang: str,
    ) -> None:
        self.searcher = searcher
        self.current_searcher = current
        self.schema = schema
        self.catalog = catalog
        self.budget = budget
        self.langs = langs
        self.qlang = qlang  # the query's language (:func:`store.index.analysis.query_language`)
        self.leaves: list[Leaf] = []
        self._forms: dict[tuple[str, str], list[str]] = {}

    # ------------------------------------------------------------------ leaves

    def leaf_query(
        self, node: Term | Prefix | Phrase, tier: str, leaf: Leaf | None
    ) -> tantivy.Query | None:
        """The tantivy query for a word, prefix or phrase in the fields of ``tier`` (``cur``
        or ``sec``) of the languages searched; None when it can match nothing."""
        parts: list[tuple[tantivy.Query, float]] = []
        for lang in self.langs:
            foreign = self._foreign(lang)
            fieldname = (word_field if foreign else text_field)(tier, lang)
            q, terms = self._in_language(node, lang, fieldname, foreign)
            if q is not None:
                parts.append((q, self._df(fieldname, terms, isinstance(node, Phrase))))
            if leaf is not None and terms:
                leaf.terms.setdefault((lang, foreign), set()).update(terms)
        self.budget.check()
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0][0]
        # One weight for the leaf whatever the language, as the whoosh engine's (its idf from
        # the language where it is commonest): tantivy weighs each field apart, which would
        # rank an English word found in a few French texts above the many English ones.
        docs = self._docs(tier)
        leaf_idf = _idf(docs, max(df for _, df in parts))
        weighted = [
            (SHOULD, tantivy.Query.boost_query(q, leaf_idf / _idf(docs, df)) if df else q)
            for q, df in parts
        ]
        return tantivy.Query.boolean_query(weighted)

    def _df(self, fieldname: str, terms: list[str], phrase: bool) -> float:
        """Documents that may match ``terms`` in a field (a phrase: its rarest word; a word
        with several forms: all of them)."""
        if not terms:
            return 0.0
        searcher = self._searcher(fieldname)
        counts = [searcher.doc_freq(fieldname, t) for t in terms]
        return float(min(counts) if phrase else sum(counts))

    def _docs(self, tier: str) -> int:
        if tier == CUR_TIER:
            return max(self.current_searcher.num_docs, 1)
        return max(self.catalog.sections, 1)

    def _foreign(self, lang: str) -> bool:
        """Whether words are looked up word for word in the fields of ``lang`` (a stemmed
        language other than the query's), as the whoosh engine does."""
        return lang != PLAIN and lang != self.qlang

    def _in_language(
        self, node: Term | Prefix | Phrase, lang: str, fieldname: str, foreign: bool
    ) -> tuple[tantivy.Query | None, list[str]]:
        schema = self.schema
        if isinstance(node, Prefix):
            prefix = fold(node.text)
            if len(prefix) < MIN_PREFIX:
                raise QueryTooBroadError(
                    f"{node.text}* is too short a prefix: give at least {MIN_PREFIX} letters"
                )
            found = self._terms(fieldname, prefix, MAX_EXPANSION + 1)
            if len(found) > MAX_EXPANSION:
                raise QueryTooBroadError(
                    f"{node.text}* matches more than {MAX_EXPANSION} different words; "
                    "type more letters before the *"
                )
            terms = sorted(t for t, _ in found)
            return _any_term(schema, fieldname, terms), terms
        slop = getattr(node, "slop", 0) or 0
        if foreign:
            words = node.words if isinstance(node, Phrase) else (node.text,)
            combos = self._combinations(fieldname, words)
            queries = [_sequence(schema, fieldname, c, slop) for c in combos if c]
            each = [q for q in queries if q is not None]
            terms = sorted({t for c in combos for t in c})
            if not each:
                return None, []
            if len(each) == 1:
                return each[0], terms
            return _one_of(each), terms
        words = node.words if isinstance(node, Phrase) else (node.text,)
        analyser = analyser_for(lang)
        terms = [t for w in words for t in analyser.terms(w)]
        if (
            isinstance(node, Term)
            and len(node.text) >= INFLECTED
            and lang == PLAIN
            and len(terms) == 1
        ):
            term = terms[0]
            stem = term[: max(INFLECTED - 1, len(term) - 2)]
            forms = sorted(
                {term} | {t for t, _ in self._terms(fieldname, stem) if len(t) <= len(term) + 3}
            )
            return _any_term(schema, fieldname, forms), forms
        return _sequence(schema, fieldname, terms, slop), terms

    def forms(self, fieldname: str, word: str) -> list[str]:
        """The words of a word-for-word field that the query's language stems as it stems
        ``word`` (English ``arbitration``: ``arbitrators``; ``data``: not ``date``), with the
        analysers' own rule (``PolicyAnalyzer.form_prefix``, ``PolicyAnalyzer.same_stem``)."""
        key = (fieldname, word)
        cached = self._forms.get(key)
        if cached is None:
            analyser = analyser_for(self.qlang)
            prefix = analyser.form_prefix(word)
            candidates = [t for t, _ in self._terms(fieldname, prefix, MAX_FORM_CANDIDATES + 1)]
            cached = self._forms[key] = analyser.same_stem(word, candidates)
        return cached

    def _combinations(self, fieldname: str, words: tuple[str, ...]) -> list[list[str]]:
        """A word or phrase in a policy of another language: each word one of its forms (at
        most ``MAX_COMBINATIONS`` phrases; beyond, each word as written), as the whoosh
        engine does."""
        plain = analyser_for(PLAIN)
        if len(words) == 1:
            folded = plain.terms(words[0])
            if len(folded) != 1:
                return [folded]
            return [[form] for form in self.forms(fieldname, words[0])]
        choices: list[list[str]] = []
        for word in words:
            folded = plain.terms(word)
            if len(folded) == 1:
                choices.append(self.forms(fieldname, word) or folded)
            else:
                choices.extend([t] for t in folded)
        if math.prod(len(c) for c in choices) > MAX_COMBINATIONS:
            return [[t for w in words for t in plain.terms(w)]]
        return [list(c) for c in itertools.product(*choices)]

    def _terms(
        self, fieldname: str, prefix: str, limit: int | None = None
    ) -> list[tuple[str, int]]:
        """The index's terms of a field that start with ``prefix`` (the ``cur_`` and filter
        fields are in ``current/``)."""
        return self._searcher(fieldname).terms_with_prefix(fieldname, prefix, limit=limit)

    def _searcher(self, fieldname: str) -> tantivy.Searcher:
        sections = fieldname.startswith((SEC_TIER, "w" + SEC_TIER))
        return self.searcher if sections else self.current_searcher

    # ------------------------------------------------------------------ current versions

    def current_query(self, node: Node) -> tantivy.Query:
        """``node`` as one tantivy query on the ``cur`` documents."""
        if isinstance(node, MatchAll):
            return tantivy.Query.all_query()
        if isinstance(node, FieldMatch):
            return tantivy.Query.const_score_query(self._field_query(node), 0.0)
        if isinstance(node, Term | Prefix | Phrase):
            leaf = Leaf(node)
            self.leaves.append(leaf)
            if isinstance(node, Phrase) and (getattr(node, "slop", 0) or 0) > 0:
                # a sloppy phrase must stay within one section: found in the sections
                return self._policies_with(node, leaf)
            q = self.leaf_query(node, CUR_TIER, leaf)
            return q if q is not None else tantivy.Query.empty_query()
        if isinstance(node, And):
            clauses = [
                (MUST_NOT, self._negated(c.child))
                if isinstance(c, Not)
                else (MUST, self.current_query(c))
                for c in node.children
            ]
            if all(occur == MUST_NOT for occur, _ in clauses):
                clauses.append((MUST, tantivy.Query.all_query()))
            return tantivy.Query.boolean_query(clauses)
        if isinstance(node, Or):
            return tantivy.Query.boolean_query(
                [(SHOULD, self.current_query(c)) for c in node.children]
            )
        if isinstance(node, Not):
            return tantivy.Query.boolean_query(
                [(MUST, tantivy.Query.all_query()), (MUST_NOT, self._negated(node.child))]
            )
        raise TypeError(f"not a query node: {node!r}")

    def _negated(self, node: Node) -> tantivy.Query:
        """A query under NOT: its leaves are not highlighted."""
        kept = len(self.leaves)
        q = self.current_query(node)
        del self.leaves[kept:]
        return q

    def _field_query(self, node: FieldMatch) -> tantivy.Query:
        want = node.value.casefold()
        if not node.prefix:
            return tantivy.Query.term_query(self.schema, node.name, want)
        values = [t for t, _ in self._terms(node.name, want)]
        return _any_term(self.schema, node.name, values) or tantivy.Query.empty_query()

    def _policies_with(self, node: Phrase, leaf: Leaf) -> tantivy.Query:
        q = self.leaf_query(node, SEC_TIER, leaf)
        if q is None:
            return tantivy.Query.empty_query()
        catalog = self.catalog
        pids = set()
        for run, _, _ in self._sections(q):
            pid = catalog.run_pid[run]
            if pid >= 0 and catalog.run_last[run] == catalog.policies[pid].count - 1:
                pids.add(pid)
        if not pids:
            return tantivy.Query.empty_query()
        return tantivy.Query.term_set_query(self.schema, "pid", sorted(pids))

    def current(self, query: SearchQuery) -> list[tuple[float, int]]:
        """(score, pid) of every policy whose current version matches."""
        schema = self.schema
        clauses = [(MUST, _const(tantivy.Query.term_query(schema, "kind", CUR)))]
        for name, value in (("service", query.service), ("type", query.type), ("lang", query.lang)):
            if value:
                clauses.append(
                    (MUST, _const(tantivy.Query.term_query(schema, name, value.casefold())))
                )
        clauses.append((MUST, self.current_query(query.tree)))
        full = tantivy.Query.boolean_query(clauses)
        self.budget.check()
        current = self.current_searcher
        hits = current.search(full, max(current.num_docs, 1), count=False).hits
        self.budget.check()
        pids = current.fast_field_values("pid", [a for _, a in hits])
        return [(float(score), int(pid or 0)) for (score, _), pid in zip(hits, pids, strict=True)]

    # ------------------------------------------------------------------ history

    def _sections(self, q: tantivy.Query) -> list[tuple[int, float, tantivy.DocAddress]]:
        """(run, score, address) of every section document matching ``q``."""
        limit = max(self.catalog.sections, 1)
        hits = self.searcher.search(q, limit, count=False).hits
        self.budget.check()
        addresses = [a for _, a in hits]
        runs = self.searcher.fast_field_values("run", addresses)
        return [
            (int(run or 0), float(score), a) for (score, a), run in zip(hits, runs, strict=True)
        ]

    def masks(self, node: Node, allowed: Masks, positive: bool = True) -> Masks:
        """Per policy, the allowed versions matching ``node``."""
        return node_masks(node, allowed, self.catalog.policies, self._leaf_masks, positive)

    def _leaf_masks(self, node: Term | Prefix | Phrase, allowed: Masks, positive: bool) -> Masks:
        leaf = Leaf(node)
        q = self.leaf_query(node, SEC_TIER, leaf)
        if positive:
            self.leaves.append(leaf)
        out: Masks = {}
        if q is None:
            return out
        if len(allowed) * 4 < len(self.catalog.policies):
            pids = tantivy.Query.term_set_query(self.schema, "pid", sorted(allowed))
            q = tantivy.Query.boolean_query([(MUST, q), (MUST, _const(pids))])
        catalog = self.catalog
        run_pid, run_first, run_last = catalog.run_pid, catalog.run_first, catalog.run_last
        run_bits, wanted_of, postings = catalog.run_bits, allowed.get, leaf.postings
        hits = self.searcher.search(q, max(catalog.sections, 1), count=False).hits
        self.budget.check()
        runs = self.searcher.fast_field_values("run", [a for _, a in hits])
        for (score, address), value in zip(hits, runs, strict=True):
            run = int(value or 0)
            pid = run_pid[run]
            wanted = wanted_of(pid)
            if wanted and (bits := run_bits[run] & wanted):
                out[pid] = out.get(pid, 0) | bits
                if positive:
                    entry = (run_first[run], run_last[run], float(score), run, address)
                    postings.setdefault(pid, []).append(entry)
        self.budget.check()
        return out

    # ------------------------------------------------------------------ snippets

    def snippets(self, hits: list[tuple[int, int]], history: bool) -> dict[int, str]:
        """HTML-safe snippets for the hits (pid, version shown)."""
        found: dict[int, dict[int, Section]] = {pid: {} for pid, _ in hits}
        seq_of = dict(hits)
        catalog = self.catalog
        for i, leaf in enumerate(self.leaves):
            if history:
                matches = [
                    (run, score, address)
                    for pid, seq in hits
                    for first, last, score, run, address in leaf.postings.get(pid, ())
                    if first <= seq <= last
                ]
            else:
                q = self.leaf_query(leaf.node, SEC_TIER, None)
                if q is None:
                    continue
                pids = tantivy.Query.term_set_query(self.schema, "pid", sorted(seq_of))
                q = tantivy.Query.boolean_query(
                    [
                        (MUST, q),
                        (MUST, _const(pids)),
                        (MUST, _const(tantivy.Query.term_query(self.schema, "kind", SEC))),
                    ]
                )
                matches = [
                    (run, score, address)
                    for run, score, address in self._sections(q)
                    if catalog.run_pid[run] in seq_of
                    and catalog.stands_in(run, seq_of[catalog.run_pid[run]])
                ]
            for run, score, address in matches:
                section = found[catalog.run_pid[run]].setdefault(run, Section(run, address))
                section.leaves.add(i)
                section.weight += score
        out = {}
        for pid, seq in hits:
            ranked = best_sections(found[pid])
            if not ranked:
                out[pid] = opening(self.searcher, self.schema, catalog, pid, seq)
                continue
            for section in ranked[:TRY_SECTIONS]:
                lang = catalog.run_lang(section.run)
                leaves = [self.leaves[i].terms for i in section.leaves]
                stems = set().union(*(t.get((lang, False), set()) for t in leaves))
                exact = frozenset().union(*(t.get((lang, True), set()) for t in leaves))
                text = section.text(self.searcher)
                out[pid] = highlight(text, stems, analyser_for(lang), exact)
                if "<mark>" in out[pid]:
                    break  # else its match was in what a reader does not see (a link target)
        return out


def _const(q: tantivy.Query) -> tantivy.Query:
    return tantivy.Query.const_score_query(q, 0.0)


def _any_term(schema: tantivy.Schema, fieldname: str, terms: list[str]) -> tantivy.Query | None:
    if not terms:
        return None
    if len(terms) == 1:
        return tantivy.Query.term_query(schema, fieldname, terms[0])
    return _one_of([tantivy.Query.term_query(schema, fieldname, t) for t in terms])


def _one_of(queries: list[tantivy.Query]) -> tantivy.Query:
    """Any of the forms of one word (its expansions, inflections or forms in another
    language), scored as its best form: a text with many forms of a word is not worth more
    words than one with the word many times."""
    return tantivy.Query.disjunction_max_query(queries, ONE_OF_TIE)


def _idf(docs: int, df: float) -> float:
    df = min(df, docs)
    return math.log(1 + (docs - df + 0.5) / (df + 0.5))


def _sequence(
    schema: tantivy.Schema, fieldname: str, terms: list[str], slop: int
) -> tantivy.Query | None:
    """One term, or a phrase of several (``slop``: at most that many other words between)."""
    if not terms:
        return None
    if len(terms) == 1:
        return tantivy.Query.term_query(schema, fieldname, terms[0])
    words: list[str | tuple[int, str]] = list(terms)
    return tantivy.Query.phrase_query(schema, fieldname, words, slop)


# --------------------------------------------------------------------------- results


def results(
    query: SearchQuery, ev: Evaluation, scored: list[tuple[float, int, int]], history: bool
) -> SearchResults:
    """A page of results from (score, pid, mask of matching versions) per policy."""
    catalog = ev.catalog
    ranked = sorted(
        scored,
        key=lambda s: (-s[0], catalog.policies[s[1]].service, catalog.policies[s[1]].type),
    )
    return result_page(
        query,
        catalog.policies,
        ranked,
        lambda shown: ev.snippets(shown, history),
        indexed_head=catalog.head,
    )


def history_scores(ev: Evaluation, masks: Masks) -> list[tuple[float, int, int]]:
    """(score, pid, mask): BM25 of the version shown, as the whoosh engine's, with the number
    of its sections that match a leaf standing for the leaf's term frequency."""
    out = []
    catalog = ev.catalog
    sections = max(catalog.sections, 1)
    idfs = []
    for leaf in ev.leaves:
        df = min(sum(len(p) for p in leaf.postings.values()), sections)
        idfs.append(math.log(1 + (sections - df + 0.5) / (df + 0.5)))
    avg = max(catalog.avg_length, 1.0)
    for pid, mask in masks.items():
        seq = mask.bit_length() - 1
        info = catalog.policies[pid]
        length = info.ntoks[seq] if seq < len(info.ntoks) else avg
        norm = K1 * (1 - B + B * length / avg)
        score = 0.0
        for leaf, idf in zip(ev.leaves, idfs, strict=True):
            tf = sum(1 for first, last, *_ in leaf.postings.get(pid, ()) if first <= seq <= last)
            if tf:
                score += idf * tf * (K1 + 1) / (tf + norm)
        out.append((score, pid, mask))
    return out
