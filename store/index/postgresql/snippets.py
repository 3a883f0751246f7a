"""Snippets of a PostgreSQL search's hits, cut as the other engines cut them.

The section of the version shown that matched the most leaves of the query, then the most
occurrences (passing over one whose matched words all sit where a reader does not see them, a
link's target); with no leaf (a query of filters only), the version's first section. The
cutting and marking is the engine-neutral :func:`store.index.highlight.highlight`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from store.index.highlight import cut, highlight, reading_text
from store.index.postgresql.evaluate import Evaluation
from store.index.postgresql.schema import SCHEMA
from store.index.postgresql.terms import analyser_for

TRY_SECTIONS = 4  # sections tried for a snippet with a highlighted word


@dataclass
class Candidate:
    run: int
    leaves: set[int] = field(default_factory=set)
    weight: float = 0.0


def snippets(ev: Evaluation, hits: list[tuple[int, int]]) -> dict[int, str]:
    """HTML-safe snippets for the hits (pid, version shown)."""
    found: dict[int, dict[int, Candidate]] = {pid: {} for pid, _ in hits}
    for i, leaf in enumerate(ev.leaves):
        for pid, seq in hits:
            for first, end, count, run in leaf.postings.get(pid, ()):
                if first <= seq < end:
                    candidate = found[pid].setdefault(run, Candidate(run))
                    candidate.leaves.add(i)
                    candidate.weight += count
    ranked = {
        pid: sorted(c.values(), key=lambda s: (-len(s.leaves), -s.weight, s.run))[:TRY_SECTIONS]
        for pid, c in found.items()
    }
    runs = [c.run for tried in ranked.values() for c in tried]
    bodies = {
        run: (body, analyser)
        for run, body, analyser in ev.conn.execute(
            f"SELECT run, body, analyser FROM {SCHEMA}.section WHERE run = ANY(%s)", (runs,)
        )
    }
    out: dict[int, str] = {}
    for pid, _ in hits:
        if not ranked[pid]:
            continue
        for candidate in ranked[pid]:
            body, lang = bodies[candidate.run]
            leaves = [ev.leaves[i].terms for i in candidate.leaves]
            stems = set().union(*(t.get((lang, False), set()) for t in leaves))
            exact = frozenset().union(*(t.get((lang, True), set()) for t in leaves))
            out[pid] = highlight(body, stems, analyser_for(lang), exact)
            if "<mark>" in out[pid]:
                break
    missing = [(pid, seq) for pid, seq in hits if pid not in out]
    if missing:
        out.update(openings(ev, missing))
    return out


def openings(ev: Evaluation, hits: list[tuple[int, int]]) -> dict[int, str]:
    """No word to highlight: the start of each version (its first section)."""
    pids, seqs = zip(*hits, strict=True)
    rows = ev.conn.execute(
        f"SELECT DISTINCT ON (h.pid) h.pid, s.body FROM unnest(%s::int[], %s::int[]) AS h(pid, seq)"
        f" JOIN {SCHEMA}.section s ON s.pid = h.pid AND s.first <= h.seq"
        " AND (s.stop IS NULL OR s.stop > h.seq) ORDER BY h.pid, s.run",
        (list(pids), list(seqs)),
    ).fetchall()
    out = {pid: "" for pid, _ in hits}
    out.update({pid: cut(reading_text(body)) for pid, body in rows})
    return out
