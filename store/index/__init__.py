"""The search index: every version of every policy, searchable, derived from git.

``open_index(path, engine=...)`` gives an engine behind the :class:`SearchIndex` interface:
``whoosh`` (the default, :mod:`store.index.whoosh`) or ``tantivy`` (:mod:`store.index.tantivy`).
Nothing outside this package names an engine's types; each engine recognises only an index it
wrote, so switching engines rebuilds the index instead of misreading it. See
docs/decisions/0003-search-index.md for the design.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    "ENGINES",
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


ENGINES = ("whoosh", "tantivy", "postgresql")
"""The search engines :func:`open_index` knows; the first is the default."""


def open_index(
    path: Path,
    *,
    readers: int = 2,
    engine: str = ENGINES[0],
    url: str = "",
    replicas: Sequence[str] = (),
) -> SearchIndex:
    """The search index stored in ``path`` by ``engine`` (or, for ``postgresql``, in the
    database at ``url``, read from ``replicas`` when there are any), read by at most
    ``readers`` searchers shared by the process's threads. Opening reads nothing: a missing
    index (or one another engine wrote) reads as empty (``exists()`` is False) until a
    writer's ``sync`` builds it."""
    if engine == "tantivy":
        from store.index.tantivy import TantivyIndex

        return TantivyIndex(Path(path), readers=readers)
    if engine == "postgresql":
        from store.index.postgresql import PostgresIndex

        return PostgresIndex(url, replicas=tuple(replicas), readers=readers)
    if engine != "whoosh":
        raise ValueError(f"unknown search engine {engine!r}: choose one of {', '.join(ENGINES)}")
    from store.index.whoosh.engine import WhooshIndex

    return WhooshIndex(Path(path), readers=readers)
