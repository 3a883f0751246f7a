"""The whoosh implementation of :class:`store.index.base.SearchIndex`.

One writer at a time (whoosh's lock file in the index directory); searchers are never
blocked by it. Each thread keeps one searcher and checks before a query whether the index
changed (a directory listing); only then does it open a new one. Nothing is opened per query.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from whoosh import index, writing
from whoosh.index import LockError
from whoosh.searching import Searcher

from store.errors import StoreError
from store.index import build
from store.index.analysis import ANALYSED, field_language
from store.index.base import IndexStats, LanguageOf, Progress, SearchIndex
from store.index.catalog import Catalog, CatalogCache
from store.index.matching import Evaluator
from store.index.query import Node, PolicyMatches, SearchQuery, SearchResults
from store.index.results import allowed_versions, build_results, policy_matches
from store.index.schema import META, SCHEMA_VERSION, TIERS, build_schema, text_field
from store.index.writer import DocumentSink, VersionIndexer, read_text
from store.versions import Version, VersionStore

log = logging.getLogger(__name__)

WRITE_TIMEOUT = 60.0
PARALLEL_FROM = 2000  # an empty index catching up with this many versions is rebuilt instead
MAX_PROCESSES = 4
BATCH_VERSIONS = 2000
LIMIT_MB = 512


class WhooshIndex(SearchIndex):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._ix = self._open()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._searchers: dict[int, Searcher] = {}
        self._cache = CatalogCache()
        self._closed = False

    def _open(self) -> index.Index:
        schema = build_schema()
        if index.exists_in(self.path):
            ix = index.open_dir(self.path)
            if set(ix.schema.names()) == set(schema.names()) and self._version(ix) in (
                None,
                SCHEMA_VERSION,
            ):
                return ix
            log.warning(
                "the search index in %s has an older layout: starting it over "
                "(`policy-archive reindex` fills it)",
                self.path,
            )
            ix.close()
        return index.create_in(self.path, schema)

    @staticmethod
    def _version(ix: index.Index) -> str | None:
        with ix.searcher() as s:
            meta = s.document(key="meta")
        return meta.get("schema_version") if meta else None

    # ------------------------------------------------------------------ searchers

    def _searcher(self) -> Searcher:
        if self._closed:
            raise StoreError("the search index is closed")
        searcher: Searcher | None = getattr(self._local, "searcher", None)
        if searcher is not None and searcher.up_to_date():
            return searcher
        if searcher is not None:
            # Not Searcher.refresh(): whoosh-reloaded 2.7.5's refresh keeps readers of segments
            # that a merge removed and reuses readers whose deletions changed (stale hits).
            searcher.close()
        searcher = self._ix.searcher()
        self._local.searcher = searcher
        self._register(searcher)
        return searcher

    def _register(self, searcher: Searcher) -> None:
        """Remember a thread's searcher, to close it with the index; close those of threads
        that ended (a thread-per-request server would otherwise leak them)."""
        ident = threading.get_ident()
        with self._lock:
            old = self._searchers.get(ident)
            if old is not None and not old.is_closed:  # a finished thread had this ident
                old.close()
            self._searchers[ident] = searcher
            alive = {t.ident for t in threading.enumerate()}
            for other in [i for i in self._searchers if i not in alive]:
                self._searchers.pop(other).close()

    def _catalog(self, searcher: Searcher) -> Catalog:
        leaves = (
            [r for r, _ in searcher.reader().leaf_readers()] if searcher.doc_count_all() else []
        )
        return self._cache.get(leaves)

    @staticmethod
    def _langs(searcher: Searcher, lang: str | None) -> list[str]:
        """The analysers to look in: that of ``lang``, else every one the index uses."""
        reader = searcher.reader()
        langs = [field_language(lang)] if lang else list(ANALYSED)
        return [x for x in langs if any(reader.field_length(text_field(x, t)) for t in TIERS)]

    # ------------------------------------------------------------------ reading

    def indexed_head(self) -> str | None:
        meta = self._searcher().document(key="meta")
        return meta.get("head") if meta else None

    def search(self, query: SearchQuery) -> SearchResults:
        searcher = self._searcher()
        catalog = self._catalog(searcher)
        deadline = time.monotonic() + query.time_budget  # reading the catalog is not the query's
        allowed = allowed_versions(catalog, query)
        current_only = not (query.history or query.date_from or query.date_to)
        ev = Evaluator(
            searcher,
            catalog,
            self._langs(searcher, query.lang),
            allowed,
            deadline,
            current_only=current_only,
        )
        masks = ev.evaluate(query.tree) if allowed else {}
        return build_results(query, searcher, catalog, ev, masks)

    def match_versions(self, node: Node, time_budget: float = 10.0) -> list[PolicyMatches]:
        searcher = self._searcher()
        catalog = self._catalog(searcher)
        allowed = {pid: (1 << p.count) - 1 for pid, p in catalog.policies.items() if p.count}
        ev = Evaluator(
            searcher,
            catalog,
            self._langs(searcher, None),
            allowed,
            time.monotonic() + time_budget,
            current_only=False,
        )
        masks = ev.evaluate(node) if allowed else {}
        return policy_matches(catalog, masks)

    def stats(self) -> IndexStats:
        searcher = self._searcher()
        catalog = self._catalog(searcher)
        return IndexStats(
            policies=sum(1 for p in catalog.policies.values() if p.count),
            versions=sum(p.count for p in catalog.policies.values()),
            sections=catalog.sections,
            head=self.indexed_head(),
        )

    # ------------------------------------------------------------------ writing

    @contextlib.contextmanager
    def _writer(self, **kwargs: object) -> Iterator[writing.IndexWriter]:
        try:
            writer = self._ix.writer(timeout=WRITE_TIMEOUT, limitmb=LIMIT_MB, **kwargs)
        except LockError:
            raise StoreError(
                f"the search index in {self.path} is being written by another process; "
                "try again when it has finished"
            ) from None
        try:
            yield writer
        except BaseException:
            writer.cancel()
            raise

    def add(
        self,
        versions: VersionStore,
        new: Sequence[Version],
        *,
        head: str | None,
        progress: Progress | None = None,
        language_of: LanguageOf | None = None,
    ) -> int:
        if len(new) >= PARALLEL_FROM and not self.stats().policies:
            return self.rebuild(versions, progress, language_of=language_of)
        searcher = self._ix.searcher()
        try:
            catalog = self._catalog(searcher)
            indexer = VersionIndexer(DocumentSink(None), catalog, searcher, language_of)
            done = 0
            for batch, batch_head in _batches(new, head):
                with self._writer() as writer:
                    indexer.sink = DocumentSink(writer)
                    for version in batch:
                        indexer.add(version, read_text(versions, version))
                        done += 1
                        if progress and (done % 50 == 0 or done == len(new)):
                            progress(done, len(new))
                    indexer.flush()
                    writer.update_document(
                        key="meta", kind=META, head=batch_head, schema_version=SCHEMA_VERSION
                    )
                    writer.commit()
            return done
        finally:
            searcher.close()

    def rebuild(
        self,
        versions: VersionStore,
        progress: Progress | None = None,
        processes: int | None = None,
        language_of: LanguageOf | None = None,
    ) -> int:
        procs = processes or min(os.cpu_count() or 1, MAX_PROCESSES)
        with self._writer() as writer:
            return build.rebuild(self._ix, writer, versions, progress, procs, language_of)

    def remove(self, service: str, type_: str) -> bool:
        with self._writer() as writer:
            searcher = writer.searcher()
            try:
                pid = self._catalog(searcher).pid_of(service, type_)
            finally:
                searcher.close()
            if pid is None:
                writer.cancel()
                return False
            writer.delete_by_term("policy", str(pid))
            writer.commit()
        return True

    def optimize(self) -> None:
        """Merge all segments into one (faster queries after many small syncs)."""
        with self._writer() as writer:
            writer.commit(optimize=True)

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        with self._lock:
            searchers, self._searchers = list(self._searchers.values()), {}
            self._closed = True
        for searcher in searchers:
            searcher.close()
        self._ix.close()


def _batches(
    new: Sequence[Version], head: str | None
) -> Iterator[tuple[Sequence[Version], str | None]]:
    """Batches of versions that end on a commit boundary, with the commit each ends at."""
    if not new:
        yield new, head
        return
    start = 0
    while start < len(new):
        end = min(start + BATCH_VERSIONS, len(new))
        while end < len(new) and new[end].id == new[end - 1].id:
            end += 1
        yield new[start:end], (head if end == len(new) else new[end - 1].id)
        start = end
