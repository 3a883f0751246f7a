"""The search index as the rest of the archive sees it: no engine's types or words.

An engine (whoosh today; tantivy or OpenSearch later) implements :class:`SearchIndex`. The
index is derived from git: it records the last commit it indexed, ``sync`` catches up from
there, ``rebuild`` starts over.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from store.errors import UnknownVersionError
from store.git.versions import Version, VersionStore
from store.index.query import TIME_BUDGET, Node, PolicyMatches, SearchQuery, SearchResults

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
LanguageOf = Callable[[str, str], str | None]


@dataclass(frozen=True)
class IndexStats:
    policies: int
    versions: int
    sections: int
    head: str | None


class SearchIndex(ABC):
    """Full-text index of every version of every policy."""

    # ------------------------------------------------------------------ writing

    def sync(
        self,
        versions: VersionStore,
        progress: Progress | None = None,
        language_of: LanguageOf | None = None,
    ) -> int:
        """Index every version committed since the last indexed commit; returns how many.

        ``language_of(service, type)`` gives a policy's language code (None: unknown, guess
        from the text). If git's history no longer contains the indexed commit (rewritten),
        the index is rebuilt.
        """
        # head before the log: a commit landing in between is indexed now and recorded by
        # the next sync (which skips it), never recorded without being indexed
        head = versions.head()
        done = self.indexed_head()
        if head == done:
            return 0
        try:
            new = versions.log(since=done)
        except UnknownVersionError:
            log.warning("indexed commit %s is not in the archive's history: rebuilding", done)
            return self.rebuild(versions, progress=progress, language_of=language_of)
        return self.add(versions, new, head=head, progress=progress, language_of=language_of)

    @abstractmethod
    def add(
        self,
        versions: VersionStore,
        new: Sequence[Version],
        *,
        head: str | None,
        progress: Progress | None = None,
        language_of: LanguageOf | None = None,
    ) -> int:
        """Index ``new`` (in commit order, each after its policy's indexed versions) and
        record ``head`` as indexed, in one atomic step per batch; returns how many were
        added. Idempotent per version: one the index holds already (or a repeat in ``new``)
        is skipped, so handing over versions again never indexes them twice."""

    @abstractmethod
    def rebuild(
        self,
        versions: VersionStore,
        progress: Progress | None = None,
        processes: int | None = None,
        language_of: LanguageOf | None = None,
    ) -> int:
        """Index every version from scratch, without reading the old index (which may be
        damaged). Searches see the old index until the new one is complete."""

    @abstractmethod
    def remove(self, service: str, type_: str) -> bool:
        """Drop a policy and all its versions from the index; False if it was not there."""

    @abstractmethod
    def exists(self) -> bool:
        """Whether an index has been built (False: missing, or of an older layout; the next
        ``sync`` builds it)."""

    @abstractmethod
    def indexed_head(self) -> str | None:
        """The last commit of the versions repository that the index holds."""

    # ------------------------------------------------------------------ reading

    @abstractmethod
    def search(self, query: SearchQuery) -> SearchResults:
        """Ranked hits (one per policy), facets and a page of highlighted snippets, with the
        head the answering index holds. Raises QueryTooBroadError when the query's own CPU
        time passes ``query.time_budget``, IndexBusyError when the server is too loaded to
        finish it in time, IndexDamagedError when the index cannot be read."""

    @abstractmethod
    def match_versions(self, node: Node, time_budget: float = TIME_BUDGET) -> list[PolicyMatches]:
        """Every policy with a version matching ``node``, with all its versions and which
        matched (for clause timelines). Searches all versions."""

    @abstractmethod
    def stats(self) -> IndexStats:
        """How much the index holds."""

    @abstractmethod
    def close(self) -> None:
        """Release files and searchers."""


def batches(
    new: Sequence[Version], head: str | None, size: int
) -> Iterator[tuple[Sequence[Version], str | None]]:
    """Batches of about ``size`` versions that end on a commit boundary, with the commit each
    ends at (the head an engine records once the batch is in): ``add`` commits batch by
    batch, so an interrupted one keeps what it did."""
    if not new:
        yield new, head
        return
    start = 0
    while start < len(new):
        end = min(start + size, len(new))
        while end < len(new) and new[end].id == new[end - 1].id:
            end += 1
        yield new[start:end], (head if end == len(new) else new[end - 1].id)
        start = end
