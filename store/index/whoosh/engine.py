"""The whoosh implementation of :class:`store.index.base.SearchIndex`.

One writer at a time (whoosh's lock file in the index directory); readers are never blocked
by it. Reading goes through one :class:`~store.index.whoosh.readers.ReaderPool` per process: at most
``readers`` searchers, shared by all threads, each reopened only when the index changed.
Nothing is opened per query. A missing index reads as empty (and ``exists()`` says so); an
unreadable one raises :class:`IndexDamagedError`. ``rebuild`` writes a new index into a fresh
folder and swaps it in (:mod:`store.index.folder`), so it works whatever state the old one is
in, and searches answer from the old one until the new one is complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from whoosh import index, writing
from whoosh.index import LockError

from store.errors import StoreError
from store.git.versions import Version, VersionStore
from store.index.analysis import ANALYSED, field_language, query_language
from store.index.base import IndexStats, LanguageOf, Progress, SearchIndex, batches
from store.index.budget import Budget
from store.index.folder import fresh_folder, swap_in
from store.index.policies import allowed_versions, every_version, policy_matches
from store.index.query import (
    TIME_BUDGET,
    IndexDamagedError,
    Node,
    PolicyMatches,
    SearchQuery,
    SearchResults,
    damaged,
    query_lang_filter,
    query_words,
)
from store.index.source import read_text
from store.index.whoosh import build
from store.index.whoosh.matching import Evaluator
from store.index.whoosh.readers import READ_ERRORS, Reader, ReaderPool
from store.index.whoosh.results import build_results
from store.index.whoosh.schema import META, SCHEMA_VERSION, TIERS, build_schema, text_field
from store.index.whoosh.writer import DocumentSink, VersionIndexer

log = logging.getLogger(__name__)

WRITE_TIMEOUT = 60.0
PARALLEL_FROM = 2000  # an empty index catching up with this many versions is rebuilt instead
MAX_PROCESSES = 4
BATCH_VERSIONS = 2000
LIMIT_MB = 512
READERS = 2
MERGE_AT = 4  # small segments gathered before they are merged into one
SMALL_SEGMENT_DOCS = 5000  # a segment this small (or under a tenth of the index) is "small"
LARGE_INDEX_DOCS = 50_000  # below this, whoosh's own policy (it merges cheaply there)


def merge_small_only(writer: writing.SegmentWriter, segments: list[Any]) -> list[Any]:
    """A whoosh merge policy that merges only segments small next to the whole index.

    whoosh's default (MERGE_SMALL) merges every segment once there are many of them, the
    largest included: on a 500 MB index that is over ten minutes of pure Python inside one
    batch's commit, holding the index's writer. Here a commit merges only the small segments
    (at most a tenth of the index), so its cost follows what it adds; a merged pile that
    grows past a tenth is left alone until the index has grown ten times.
    """
    from whoosh.reading import SegmentReader

    total = sum(seg.doc_count_all() for seg in segments)
    if total < LARGE_INDEX_DOCS:
        return writing.MERGE_SMALL(writer, segments)
    limit = max(SMALL_SEGMENT_DOCS, total // 10)
    small = [seg for seg in segments if seg.doc_count_all() <= limit]
    if len(small) < MERGE_AT:
        return segments
    for seg in small:
        reader = SegmentReader(writer.storage, writer.schema, seg)
        writer.add_reader(reader)
        reader.close()
    return [seg for seg in segments if all(seg is not s for s in small)]


"""Searchers per process: enough that one slow query does not hold up every other search."""


class WhooshIndex(SearchIndex):
    def __init__(self, path: Path, *, readers: int = READERS) -> None:
        self.path = Path(path)
        self._readers = ReaderPool(self.path, readers)

    @staticmethod
    def _langs(reader: Reader, lang: str | None) -> list[str]:
        """The analysers to look in: that of ``lang``, else every one the index uses."""
        ixreader = reader.searcher.reader()
        langs = [field_language(lang)] if lang else list(ANALYSED)
        return [x for x in langs if any(ixreader.field_length(text_field(x, t)) for t in TIERS)]

    # ------------------------------------------------------------------ reading

    def exists(self) -> bool:
        return self._readers.exists()

    def indexed_head(self) -> str | None:
        with self._readers.reader() as reader:
            return reader.head if reader else None

    def search(self, query: SearchQuery) -> SearchResults:
        budget = Budget(query.time_budget)
        with self._readers.reader(budget) as reader:
            if reader is None:
                return SearchResults.empty(query)
            budget.restart_cpu()  # opening a searcher and its catalog is not the query's work
            searcher, catalog = reader.searcher, reader.catalog
            allowed = allowed_versions(catalog.policies, query)
            current_only = not (query.history or query.date_from or query.date_to)
            ev = Evaluator(
                searcher,
                catalog,
                self._langs(reader, query.lang),
                allowed,
                budget,
                current_only=current_only,
                qlang=query_language(
                    query_words(query.tree), query.lang or query_lang_filter(query.tree)
                ),
            )
            masks = ev.evaluate(query.tree) if allowed else {}
            results = build_results(query, searcher, catalog, ev, masks)
            return dataclasses.replace(results, indexed_head=reader.head)

    def match_versions(self, node: Node, time_budget: float = TIME_BUDGET) -> list[PolicyMatches]:
        budget = Budget(time_budget)
        with self._readers.reader(budget) as reader:
            if reader is None:
                return []
            budget.restart_cpu()
            catalog = reader.catalog
            allowed = every_version(catalog.policies)
            ev = Evaluator(
                reader.searcher,
                catalog,
                self._langs(reader, None),
                allowed,
                budget,
                current_only=False,
                qlang=query_language(query_words(node), query_lang_filter(node)),
            )
            masks = ev.evaluate(node) if allowed else {}
            return policy_matches(catalog.policies, masks)

    def stats(self) -> IndexStats:
        with self._readers.reader() as reader:
            if reader is None:
                return IndexStats(policies=0, versions=0, sections=0, head=None)
            catalog = reader.catalog
            return IndexStats(
                policies=sum(1 for p in catalog.policies.values() if p.count),
                versions=sum(p.count for p in catalog.policies.values()),
                sections=catalog.sections,
                head=reader.head,
            )

    # ------------------------------------------------------------------ writing

    def sync(
        self,
        versions: VersionStore,
        progress: Progress | None = None,
        language_of: LanguageOf | None = None,
    ) -> int:
        """As :meth:`SearchIndex.sync`; a missing index is built, a damaged one rebuilt (the
        index is derived from git: a writer never stops for it)."""
        try:
            if self.exists():
                doubled = self.doubled()
                if not doubled:
                    return super().sync(versions, progress=progress, language_of=language_of)
                service, type_, vid = doubled[0]
                log.warning(
                    "the search index in %s holds %d version(s) more than once (%s %s %s…); "
                    "rebuilding it from git now",
                    self.path,
                    len(doubled),
                    service,
                    type_,
                    vid[:12],
                )
            else:
                log.info("building the search index in %s from git", self.path)
        except IndexDamagedError as exc:
            log.warning("%s; rebuilding it from git now", exc)
        return self.rebuild(versions, progress=progress, language_of=language_of)

    def doubled(self) -> list[tuple[str, str, str]]:
        """(service, type, version id) of each version the index holds more than once: an
        index written before ``add`` skipped what it held (``sync`` rebuilds it)."""
        with self._readers.reader() as reader:
            return list(reader.catalog.doubled) if reader else []

    @contextlib.contextmanager
    def _index(self) -> Iterator[index.Index]:
        """The index in place, opened for writing (it exists: callers check first)."""
        try:
            ix = index.open_dir(self.path)
        except READ_ERRORS as exc:
            raise damaged(self.path, exc) from None
        try:
            yield ix
        finally:
            ix.close()

    @contextlib.contextmanager
    def _writer(self, ix: index.Index) -> Iterator[writing.IndexWriter]:
        try:
            writer = ix.writer(timeout=WRITE_TIMEOUT, limitmb=LIMIT_MB)
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
        if not self.exists() or (len(new) >= PARALLEL_FROM and not self.stats().policies):
            return self.rebuild(versions, progress, language_of=language_of)
        with self._index() as ix:
            try:
                searcher = ix.searcher()
                catalog = self._readers.catalog(searcher)
            except READ_ERRORS as exc:
                raise damaged(self.path, exc) from None
            try:
                indexer = VersionIndexer(DocumentSink(None), catalog, searcher, language_of)
                seen = added = 0
                for batch, batch_head in batches(new, head, BATCH_VERSIONS):
                    with self._writer(ix) as writer:
                        indexer.sink = DocumentSink(writer)
                        for version in batch:
                            if not indexer.holds(version):  # read no text for a repeat
                                added += indexer.add(version, read_text(versions, version))
                            seen += 1
                            if progress and (seen % 50 == 0 or seen == len(new)):
                                progress(seen, len(new))
                        indexer.flush()
                        writer.update_document(
                            key="meta", kind=META, head=batch_head, schema_version=SCHEMA_VERSION
                        )
                        writer.commit(mergetype=merge_small_only)
                if added < len(new):
                    log.warning(
                        "%d of the %d versions to index up to %s were in the search index "
                        "already: skipped",
                        len(new) - added,
                        len(new),
                        head[:12] if head else "(none)",
                    )
                return added
            except OSError as exc:
                raise StoreError(f"cannot write the search index in {self.path}: {exc}") from None
            finally:
                searcher.close()

    def rebuild(
        self,
        versions: VersionStore,
        progress: Progress | None = None,
        processes: int | None = None,
        language_of: LanguageOf | None = None,
    ) -> int:
        """Build a new index in a fresh folder, then swap it in (the old one is not read)."""
        procs = processes or min(os.cpu_count() or 1, MAX_PROCESSES)
        new = fresh_folder(self.path)
        try:
            ix = index.create_in(new, build_schema())
            try:
                with self._writer(ix) as writer:
                    count = build.rebuild(ix, writer, versions, progress, procs, language_of)
            finally:
                ix.close()
            swap_in(new, self.path)
        except OSError as exc:
            raise StoreError(f"cannot build the search index in {new}: {exc}") from None
        finally:
            shutil.rmtree(new, ignore_errors=True)
        return count

    def remove(self, service: str, type_: str) -> bool:
        if not self.exists():
            return False
        with self._index() as ix, self._writer(ix) as writer:
            searcher = writer.searcher()
            try:
                pid = self._readers.catalog(searcher).pid_of(service, type_)
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
        if not self.exists():
            return
        with self._index() as ix, self._writer(ix) as writer:
            writer.commit(optimize=True)

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        self._readers.close()
