"""The search index: every version of every policy, searchable, derived from git.

``open_index(path)`` gives the engine behind the :class:`SearchIndex` interface; nothing
outside this package names the engine (whoosh) or its types. See
docs/decisions/0003-search-index.md for the design.
"""

from __future__ import annotations

from pathlib import Path

from store.index.base import IndexStats, LanguageOf, Progress, SearchIndex
from store.index.query import (
    TIME_BUDGET,
    And,
    FieldMatch,
    IndexBusyError,
    IndexDamagedError,
    MatchAll,
    Node,
    Not,
    Or,
    Phrase,
    PolicyMatches,
    Prefix,
    QueryTooBroadError,
    SearchHit,
    SearchQuery,
    SearchResults,
    Term,
    VersionRef,
)

__all__ = [
    "TIME_BUDGET",
    "And",
    "FieldMatch",
    "IndexBusyError",
    "IndexDamagedError",
    "IndexStats",
    "LanguageOf",
    "MatchAll",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "PolicyMatches",
    "Prefix",
    "Progress",
    "QueryTooBroadError",
    "SearchHit",
    "SearchIndex",
    "SearchQuery",
    "SearchResults",
    "Term",
    "VersionRef",
    "open_index",
]


def open_index(path: Path, *, readers: int = 2) -> SearchIndex:
    """The search index stored in ``path``, read by at most ``readers`` searchers shared by
    the process's threads. Opening reads nothing: a missing index reads as empty
    (``exists()`` is False) until a writer's ``sync`` builds it."""
    from store.index.engine import WhooshIndex

    return WhooshIndex(Path(path), readers=readers)
