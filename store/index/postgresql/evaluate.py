"""Evaluate a query tree on the PostgreSQL index, with the other engines' document-level meaning.

Each word, prefix or phrase becomes one statement: its tsquery per analyser searched
(:mod:`store.index.postgresql.translate`), matched against the sections' tsvectors (the RUM
indexes; only open sections, through their partial indexes, for current versions), each row
with the number of times the leaf occurs in it. A matching section stands for the run of
versions it stood in, so a leaf gives, per policy, the set of versions containing it (an int as
a bit set); AND, OR and NOT are set operations per policy, as in the other engines
(:mod:`store.index.policies`). Scores are BM25 of the version shown, from those counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import psycopg

from store.index.budget import Budget
from store.index.policies import Masks, node_masks
from store.index.postgresql.catalog import Catalog
from store.index.postgresql.schema import SCHEMA
from store.index.postgresql.translate import Leafy, Lookup, Translator
from store.index.query import Node
from store.index.rules import K1, B, near_count

Posting = tuple[int, int, float, int]  # first version, end (exclusive), count, run


@dataclass
class Leaf:
    """A positive leaf: its terms per (analyser, looked up word for word), for highlighting,
    and its matching sections per policy."""

    node: Leafy
    terms: dict[tuple[str, bool], set[str]] = field(default_factory=dict)
    postings: dict[int, list[Posting]] = field(default_factory=dict)


class Evaluation:
    """One query on one connection (one snapshot) of the index."""

    def __init__(
        self,
        conn: psycopg.Connection,
        catalog: Catalog,
        translator: Translator,
        budget: Budget,
        langs: list[str],
        current: bool,
    ) -> None:
        self.conn = conn
        self.catalog = catalog
        self.translator = translator
        self.budget = budget
        self.langs = langs
        self.current = current  # open sections only (the current versions)
        self.leaves: list[Leaf] = []

    def masks(self, node: Node, allowed: Masks, positive: bool = True) -> Masks:
        """Per policy, the allowed versions matching ``node``."""
        return node_masks(node, allowed, self.catalog.policies, self._leaf_masks, positive)

    def _leaf_masks(self, node: Leafy, allowed: Masks, positive: bool) -> Masks:
        leaf = Leaf(node)
        if positive:
            self.leaves.append(leaf)
        lookups = []
        for lang in self.langs:
            lookup = self.translator.lookup(node, lang)
            if lookup is not None:
                lookups.append(lookup)
                leaf.terms.setdefault((lang, lookup.foreign), set()).update(lookup.terms)
        self.budget.check()
        out: Masks = {}
        if not lookups or not allowed:
            return out
        pids = sorted(allowed) if len(allowed) * 4 < len(self.catalog.policies) else None
        policies = self.catalog.policies
        for first, stop, count, run, pid in self._rows(lookups, pids):
            wanted = allowed.get(pid)
            if not wanted or not count:
                continue
            end = policies[pid].count if stop is None else stop
            bits = (((1 << (end - first)) - 1) << first) & wanted
            if bits:
                out[pid] = out.get(pid, 0) | bits
                if positive:
                    leaf.postings.setdefault(pid, []).append((first, end, count, run))
        self.budget.check()
        return out

    def _rows(
        self, lookups: list[Lookup], pids: list[int] | None
    ) -> list[tuple[int, int | None, float, int, int]]:
        """(first, stop, count, run, pid) of the sections matching any lookup."""
        selects: list[str] = []
        params: list[object] = []
        for i, lookup in enumerate(lookups):
            col = lookup.column
            if lookup.prefix is not None:
                counted = (
                    f"(SELECT sum(cardinality(u.positions)) FROM unnest({col}) u "
                    "WHERE starts_with(u.lexeme, %s))::float8, NULL::text[]"
                )
                params.append(lookup.prefix)
            elif lookup.positional:
                counted = (
                    "0::float8, (SELECT array_agg(u.lexeme || ':' || array_to_string(u.positions, "
                    f"',')) FROM unnest({col}) u WHERE u.lexeme = ANY(%s))"
                )
                params.append(lookup.terms)
            else:
                counted = (
                    f"(SELECT sum(cardinality(u.positions)) FROM unnest({col}) u "
                    "WHERE u.lexeme = ANY(%s))::float8, NULL::text[]"
                )
                params.append(lookup.terms)
            where = f"analyser = %s AND {col} @@ %s::tsquery"
            params += [lookup.analyser, lookup.tsquery]
            if self.current:
                where += " AND stop IS NULL"
            if pids is not None:
                where += " AND pid = ANY(%s)"
                params.append(pids)
            selects.append(
                f"SELECT {i}, first, stop, {counted}, run, pid FROM {SCHEMA}.section WHERE {where}"
            )
        rows = self.conn.execute(" UNION ALL ".join(selects), params).fetchall()
        self.budget.check()
        out = []
        for i, first, stop, count, positions, run, pid in rows:
            if positions is not None:
                count = _near(lookups[i], positions)
            out.append((first, stop, float(count or 0), run, pid))
        return out


def _near(lookup: Lookup, found: list[str]) -> float:
    """How often the lookup's sequences occur, from ``lexeme:positions`` strings."""
    positions: dict[str, list[int]] = {}
    for item in found:
        lexeme, _, at = item.rpartition(":")
        positions[lexeme] = sorted(int(p) for p in at.split(","))
    total = 0
    for combo in lookup.combos:
        if all(t in positions for t in combo):
            total += near_count([positions[t] for t in combo], lookup.slop)
    return float(total)


def scores(ev: Evaluation, masks: Masks) -> list[tuple[float, int, int]]:
    """(score, pid, mask): BM25 of the version shown, with a leaf's term frequency the
    occurrences in the sections standing in that version; documents are policies (current
    versions) or sections (history)."""
    catalog = ev.catalog
    if ev.current:
        docs = max(sum(1 for p in catalog.policies.values() if p.count), 1)
        avg = max(catalog.avg_current, 1.0)
    else:
        docs = max(catalog.sections, 1)
        avg = max(catalog.avg_all, 1.0)
    idfs = []
    for leaf in ev.leaves:
        df = len(leaf.postings) if ev.current else sum(len(p) for p in leaf.postings.values())
        df = min(df, docs)
        idfs.append(math.log(1 + (docs - df + 0.5) / (df + 0.5)))
    out = []
    for pid, mask in masks.items():
        seq = mask.bit_length() - 1
        info = catalog.policies[pid]
        length = info.ntoks[seq] if seq < len(info.ntoks) else avg
        norm = K1 * (1 - B + B * length / avg)
        score = 0.0
        for leaf, idf in zip(ev.leaves, idfs, strict=True):
            tf = sum(c for first, end, c, _ in leaf.postings.get(pid, ()) if first <= seq < end)
            if tf:
                score += idf * tf * (K1 + 1) / (tf + norm)
        out.append((score, pid, mask))
    return out
