"""Proximity: versions where a query's words stand close together rank above scattered ones.

BM25 over a whole version ignores where its words are: six words typed from one sentence rank
the policy they come from with every policy that holds the six somewhere. So the best-ranked
candidates (at most ``CANDIDATES``) get a boost from the sections of the version they are shown
at: for each window of a section holding two or more different query words, the sum of their
idf times ``(words - 1) / (span - 1)`` (1 for words next to each other, ½ when they stand two
apart on average); the version's boost is its best window's. Positions come from the section
fields (the words documents have none), for the candidates' sections only: first which query
words each section holds (ids only), then the positions of the ``SECTIONS_PER_HIT`` sections of
each candidate that hold the most weight of different words (a window scores at most that).
"""

from __future__ import annotations

from collections.abc import Sequence

from store.index.whoosh.matching import Evaluator
from store.index.whoosh.postings import values_of

CANDIDATES = 100
"""Best-ranked hits (by BM25) whose word positions are read for the boost."""
SECTIONS_PER_HIT = 4
"""Sections of a hit whose windows are scored: those holding the most of the query's words."""
MAX_SPAN = 40
"""Widest window of words counted as standing together (a long sentence)."""
WEIGHT = 1.0
"""The boost's weight against BM25 (six words next to each other: about their summed idf)."""


def window_score(occurrences: Sequence[tuple[int, int]], idf: Sequence[float]) -> float:
    """The best window of one section: ``occurrences`` are (position, leaf) sorted by
    position; a window's score is the idf of the different leaves in it times
    ``(leaves - 1) / (span - 1)``."""
    best = 0.0
    n = len(occurrences)
    for i in range(n):
        start, first_leaf = occurrences[i]
        seen = {first_leaf}
        total = idf[first_leaf]
        for j in range(i + 1, n):
            pos, leaf = occurrences[j]
            span = pos - start + 1
            if span > MAX_SPAN:
                break
            if leaf in seen or pos == start:
                continue
            seen.add(leaf)
            total += idf[leaf]
            score = total * (len(seen) - 1) / (span - 1)
            if score > best:
                best = score
    return best


def _best_sections(
    holders: dict[int, set[int]], owner: dict[int, int], idf: Sequence[float]
) -> list[int]:
    """Of each hit's sections holding two different words or more, the ``SECTIONS_PER_HIT``
    with the most weight of different words (a window's score is at most that), sorted."""
    by_pid: dict[int, list[tuple[float, int]]] = {}
    for d, held in holders.items():
        if len(held) > 1:
            by_pid.setdefault(owner[d], []).append((-sum(idf[i] for i in held), d))
    docs = [d for ranked in by_pid.values() for _, d in sorted(ranked)[:SECTIONS_PER_HIT]]
    return sorted(docs)


def proximity(ev: Evaluator, hits: list[tuple[int, int]]) -> dict[int, float]:
    """The boost of each hit (pid, version shown) whose query has two or more words that
    every hit holds (alternatives of an OR do not count)."""
    leaves = [i for i, leaf in enumerate(ev.leaves) if leaf.section_terms and leaf.required]
    if len(leaves) < 2 or not hits:
        return {}
    idf = [leaf.idf for leaf in ev.leaves]
    catalog = ev.catalog
    # the sections standing in each hit's version, per segment
    owner: list[dict[int, int]] = []
    for view in catalog.segments:
        in_version = {
            d: pid
            for pid, seq in hits
            for d in view.docs_by_pid.get(pid, ())
            if view.first[d] <= seq <= catalog.last(view, d)
        }
        owner.append(in_version)
    occurrences: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for seg, sub in enumerate(ev.subs):
        if not owner[seg]:
            continue
        reader = sub.reader()
        plan = [
            (i, name, term)
            for i in leaves
            for name, term in ev.leaves[i].section_terms
            if (name, term) in reader
        ]
        # first the sections where two different words stand; only theirs are decoded
        holders: dict[int, set[int]] = {}
        candidates = sorted(owner[seg])
        for i, name, term in plan:
            df = reader.doc_frequency(name, term)
            for d, _ in values_of(
                reader.postings(name, term), candidates, df, ev.deadline, values=False
            ):
                holders.setdefault(d, set()).add(i)
        docs = _best_sections(holders, owner[seg], idf)
        if not docs:
            continue
        for i, name, term in plan:
            decode = reader.schema[name].format.decode_positions
            df = reader.doc_frequency(name, term)
            for d, value in values_of(reader.postings(name, term), docs, df, ev.deadline):
                found = occurrences.setdefault((seg, d), [])
                found.extend((p, i) for p in decode(value))
    out: dict[int, float] = {}
    for (seg, d), found in occurrences.items():
        found.sort()
        score = window_score(found, idf)
        pid = owner[seg][d]
        if score > out.get(pid, 0.0):
            out[pid] = score
    return {pid: WEIGHT * score for pid, score in out.items()}
