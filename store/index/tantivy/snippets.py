"""Which section a tantivy hit's snippet is cut from (the cutting is :mod:`store.index.highlight`).

As in the whoosh engine: the section of the version shown that matched the most leaves of the
query, then the highest weight (its BM25 here), passing over one whose matched words all sit
where a reader does not see them (a link's target); with no leaf (a query of filters only),
the version's first section.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tantivy

from store.index.highlight import cut, reading_text
from store.index.tantivy.catalog import Catalog, stored_bytes


@dataclass
class Section:
    run: int
    address: tantivy.DocAddress
    leaves: set[int] = field(default_factory=set)
    weight: float = 0.0

    def text(self, searcher: tantivy.Searcher) -> str:
        return stored_bytes(searcher, self.address).decode("utf-8")


def best_sections(sections: dict[int, Section]) -> list[Section]:
    """The matching sections, best first."""
    return sorted(sections.values(), key=lambda s: (-len(s.leaves), -s.weight, s.run))


def opening(
    searcher: tantivy.Searcher, schema: tantivy.Schema, catalog: Catalog, pid: int, seq: int
) -> str:
    """No word to highlight: the start of the version (its first section)."""
    runs = [
        row[0]
        for row in catalog.entries[pid].runs
        if row[1] <= seq and (not row[2] or seq < row[2])
    ]
    if not runs:
        return ""
    hits = searcher.search(tantivy.Query.term_query(schema, "run", min(runs)), 1).hits
    if not hits:
        return ""
    return cut(reading_text(stored_bytes(searcher, hits[0][1]).decode("utf-8")))
