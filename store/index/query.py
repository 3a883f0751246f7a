"""What a search asks and answers, in terms that name no search engine.

A query is a small tree (:data:`Node`) built by :mod:`archive.search` from what a person typed;
an engine evaluates it with *document-level* meaning: a node matches a version of a policy when
the version's whole text satisfies it (all words of ``retention 30 days`` anywhere in the
policy, not necessarily in one paragraph). Phrases must occur within one section (across
its paragraph breaks). Which analyser reads a word depends on the query's language
(:func:`store.index.analysis.query_language`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from store.errors import StoreError

log = logging.getLogger(__name__)

FIELDS = ("service", "type", "lang")
TIME_BUDGET = 3.0
"""CPU seconds one search or clause timeline may take before it is refused as too broad."""


class QueryTooBroadError(StoreError):
    """A query cannot be answered within its time budget or expands to too many words."""


class IndexBusyError(StoreError):
    """The index is too busy to answer now (the query itself was within its budget): retry."""

    retry_after = 5


class IndexDamagedError(StoreError):
    """The index cannot be read (a truncated or corrupt file): rebuild it from git."""


def damaged(path: Path, exc: BaseException) -> IndexDamagedError:
    """The one-line error for an index whose files cannot be read."""
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
    log.debug("reading the search index in %s failed", path, exc_info=exc)
    return IndexDamagedError(
        f"the search index in {path} is damaged and cannot be read ({detail}); "
        "rebuild it with `policy-archive reindex`"
    )


# --------------------------------------------------------------------------- the query tree


@dataclass(frozen=True)
class Term:
    """One word of the policy text, as typed (the engine analyses it per language)."""

    text: str


@dataclass(frozen=True)
class Prefix:
    """Words starting with ``text`` (``retain*``)."""

    text: str


@dataclass(frozen=True)
class Phrase:
    """Words in this order within one section of the text: next to each other, or with at
    most ``slop`` other words between them in all (``"retention days"~10``)."""

    words: tuple[str, ...]
    slop: int = 0


@dataclass(frozen=True)
class FieldMatch:
    """``service:``, ``type:`` or ``lang:`` (case-insensitive; ``prefix`` for ``Work*``)."""

    name: str
    value: str
    prefix: bool = False


@dataclass(frozen=True)
class MatchAll:
    """Every version (a query of filters only)."""


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Term | Prefix | Phrase | FieldMatch | MatchAll | And | Or | Not


def query_words(node: Node) -> list[str]:
    """The words a query searches for (of its terms, prefixes and phrases), in order."""
    if isinstance(node, Term | Prefix):
        return [node.text]
    if isinstance(node, Phrase):
        return list(node.words)
    if isinstance(node, And | Or):
        return [w for child in node.children for w in query_words(child)]
    if isinstance(node, Not):
        return query_words(node.child)
    return []


def query_lang_filter(node: Node) -> str | None:
    """The language a query asks for with ``lang:`` (not negated, not a prefix), when it names
    exactly one; else None."""
    found: set[str] = set()

    def visit(n: Node) -> None:
        if isinstance(n, FieldMatch) and n.name == "lang" and not n.prefix:
            found.add(n.value.casefold())
        elif isinstance(n, And | Or):
            for child in n.children:
                visit(child)

    visit(node)
    return found.pop() if len(found) == 1 else None


@dataclass(frozen=True)
class SearchQuery:
    """A parsed query with its options.

    Which versions are searched: by default each policy's current version; ``history`` every
    version; ``date_from``/``date_to`` (inclusive days) the versions in force at some time in
    that range. A policy is one hit, shown at its latest matching version.
    """

    text: str
    tree: Node
    history: bool = False
    service: str | None = None
    type: str | None = None
    lang: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    limit: int = 10
    page: int = 1
    time_budget: float = TIME_BUDGET


# --------------------------------------------------------------------------- answers


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class VersionRef:
    """A version of a policy as the index knows it: id, observation date, when it ended."""

    id: str
    date: datetime
    valid_to: datetime | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"version": self.id, "date": self.date.isoformat()}


@dataclass(frozen=True)
class SearchHit:
    """One policy; ``version`` is its latest version that matched (within the searched set)."""

    service: str
    type: str
    lang: str | None
    version: VersionRef
    current: bool
    score: float
    snippet: str
    first_match: VersionRef | None = None
    last_match: VersionRef | None = None
    matched_versions: int = 1

    def as_json(self, *, history: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "service": self.service,
            "type": self.type,
            "lang": self.lang,
            "version": self.version.id,
            "date": self.version.date.isoformat(),
            "valid_from": self.version.date.isoformat(),
            "valid_to": _iso(self.version.valid_to),
            "current": self.current,
            "score": round(self.score, 4),
            "snippet": self.snippet,
        }
        if history:
            first, last = self.first_match or self.version, self.last_match or self.version
            out["first_match"] = first.date.isoformat()
            # None while the match still holds (the current version matches).
            out["last_match"] = None if self.current else last.date.isoformat()
            out["match_until"] = _iso(last.valid_to)
            out["first_match_version"] = first.id
            out["matched_versions"] = self.matched_versions
        return out


@dataclass(frozen=True)
class SearchResults:
    query: SearchQuery
    total: int
    hits: list[SearchHit]
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    indexed_head: str | None = None  # the last commit the index that answered holds
    stale: bool = False  # that index is missing or behind the archive's HEAD

    @classmethod
    def empty(cls, query: SearchQuery) -> SearchResults:
        """What an index that holds nothing answers (no hits, every facet empty)."""
        return cls(query, 0, [], {"service": {}, "type": {}, "lang": {}})

    @property
    def page(self) -> int:
        return self.query.page

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.query.limit))

    def as_json(self) -> dict[str, Any]:
        return {
            "query": self.query.text,
            "history": self.query.history,
            "total": self.total,
            "page": self.page,
            "pages": self.pages,
            "hits": [h.as_json(history=self.query.history) for h in self.hits],
            "facets": self.facets,
            "stale": self.stale,
        }


@dataclass(frozen=True)
class PolicyMatches:
    """Every version of one policy, and which of them matched (for clause timelines)."""

    service: str
    type: str
    versions: tuple[VersionRef, ...]
    matched: tuple[bool, ...]
