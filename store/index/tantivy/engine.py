"""The tantivy implementation of :class:`store.index.base.SearchIndex`.

The index folder holds two tantivy indexes, ``sections/`` and ``current/``
(:mod:`store.index.tantivy.schema`); the ``meta`` document of ``sections/`` names the layout. A
folder of another engine or layout reads as missing, so the next ``sync`` rebuilds it. One
writer at a time (tantivy's lock file); readers are never blocked. Each process keeps one
reader: before a query it checks (one ``stat``, two small reads) whether the index changed (a
commit, or a rebuilt folder swapped in) and only then reloads it and reads the catalog
(:mod:`store.index.tantivy.catalog`), shared by every thread. tantivy searches without holding
the GIL, so threads search in parallel. ``rebuild`` writes a new index into a fresh folder and
swaps it in (:mod:`store.index.folder`).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import tantivy

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
from store.index.source import read_text, texts_ahead
from store.index.tantivy.catalog import Catalog
from store.index.tantivy.prepare import Prepared, prepare_all
from store.index.tantivy.schema import CURRENT_DIR, LAYOUT, META, SECTIONS_DIR, build_schema
from store.index.tantivy.search import Evaluation, history_scores, results
from store.index.tantivy.writer import Indexer, Sink

log = logging.getLogger(__name__)

HEAP_BYTES = 256_000_000
WRITER_THREADS = 2
BATCH_VERSIONS = 2000
PARALLEL_FROM = 2000  # an empty index catching up with this many versions is rebuilt instead
REPORT_EVERY = 50
MAX_PROCESSES = 4
PARALLEL_PER = 500  # versions per worker process, at least (fewer: one process)


Signature = tuple[int, bytes, bytes]


@dataclass(frozen=True)
class View:
    """One generation of the index: searchers of both tantivy indexes, and the catalog."""

    sections: tantivy.Index
    current: tantivy.Index
    searcher: tantivy.Searcher
    current_searcher: tantivy.Searcher
    catalog: Catalog
    signature: Signature

    def evaluation(
        self, budget: Budget, langs: list[str], node: Node, lang: str | None
    ) -> Evaluation:
        """An evaluation of ``node``, its words read in the query's language (that of
        ``lang``, a filter, if given: :func:`store.index.analysis.query_language`)."""
        qlang = query_language(query_words(node), lang or query_lang_filter(node))
        return Evaluation(
            self.searcher,
            self.current_searcher,
            self.sections.schema,
            self.catalog,
            budget,
            langs,
            qlang,
        )


class TantivyIndex(SearchIndex):
    def __init__(self, path: Path, *, readers: int = 2) -> None:
        self.path = Path(path)
        self.readers = readers
        self._lock = threading.Lock()
        self._view: View | None = None

    # ------------------------------------------------------------------ reading

    def _signature(self) -> Signature | None:
        """Which index is in the folder now: (the folder's inode, and each tantivy index's
        list of committed segments, a small file rewritten by every commit); None when there
        is none."""
        try:
            folder = os.stat(self.path).st_ino
            sections = (self.path / SECTIONS_DIR / "meta.json").read_bytes()
            current = (self.path / CURRENT_DIR / "meta.json").read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise damaged(self.path, exc) from None
        return (folder, sections, current)

    def _current(self) -> View | None:
        """The latest generation of the index (None: no index of this layout)."""
        signature = self._signature()
        if signature is None:
            return None
        view = self._view
        if view is not None and view.signature == signature:
            return view if view.catalog.layout == LAYOUT else None
        with self._lock:
            view = self._view
            if view is None or view.signature != signature:
                view = self._open(signature, view)
                self._view = view
        return view if view.catalog.layout == LAYOUT else None

    def _open(self, signature: Signature, old: View | None) -> View:
        try:
            if old is not None and old.signature[0] == signature[0]:
                sections, current = old.sections, old.current
                sections.reload()  # the catalog first: current texts are then never older
                current.reload()
            else:
                sections = _open_index(self.path / SECTIONS_DIR)
                current = _open_index(self.path / CURRENT_DIR)
            searcher = sections.searcher()
            catalog = Catalog.read(searcher, sections.schema)
            current_searcher = current.searcher()
        except (ValueError, OSError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise damaged(self.path, exc) from None
        return View(sections, current, searcher, current_searcher, catalog, signature)

    def exists(self) -> bool:
        return self._current() is not None

    def indexed_head(self) -> str | None:
        view = self._current()
        return view.catalog.head if view else None

    def _langs(self, catalog: Catalog, lang: str | None, current: bool) -> list[str]:
        present = catalog.current_analysers if current else catalog.analysers
        langs = [field_language(lang)] if lang else list(ANALYSED)
        return [x for x in langs if x in present]

    def search(self, query: SearchQuery) -> SearchResults:
        budget = Budget(query.time_budget)
        view = self._current()
        if view is None:
            return SearchResults.empty(query)
        budget.restart_cpu()  # opening a searcher and its catalog is not the query's work
        catalog = view.catalog
        history = bool(query.history or query.date_from or query.date_to)
        langs = self._langs(catalog, query.lang, current=not history)
        ev = view.evaluation(budget, langs, query.tree, query.lang)
        try:
            if history:
                allowed = allowed_versions(catalog.policies, query)
                masks = ev.masks(query.tree, allowed) if allowed else {}
                scored = history_scores(ev, masks)
            else:
                scored = [
                    (score, pid, 1 << (catalog.policies[pid].count - 1))
                    for score, pid in ev.current(query)
                    if pid in catalog.policies and catalog.policies[pid].count
                ]
            return results(query, ev, scored, history)
        except (ValueError, OSError) as exc:
            raise damaged(self.path, exc) from None

    def match_versions(self, node: Node, time_budget: float = TIME_BUDGET) -> list[PolicyMatches]:
        budget = Budget(time_budget)
        view = self._current()
        if view is None:
            return []
        budget.restart_cpu()
        catalog = view.catalog
        allowed = every_version(catalog.policies)
        ev = view.evaluation(budget, self._langs(catalog, None, False), node, None)
        try:
            masks = ev.masks(node, allowed) if allowed else {}
        except (ValueError, OSError) as exc:
            raise damaged(self.path, exc) from None
        return policy_matches(catalog.policies, masks)

    def stats(self) -> IndexStats:
        view = self._current()
        if view is None:
            return IndexStats(policies=0, versions=0, sections=0, head=None)
        catalog = view.catalog
        return IndexStats(
            policies=sum(1 for p in catalog.policies.values() if p.count),
            versions=sum(p.count for p in catalog.policies.values()),
            sections=catalog.sections,
            head=catalog.head,
        )

    def doubled(self) -> list[tuple[str, str, str]]:
        """(service, type, version id) of each version the index holds more than once (none:
        the writer skips what the index holds; kept for ``verify``, as whoosh's)."""
        view = self._current()
        return list(view.catalog.doubled) if view else []

    # ------------------------------------------------------------------ writing

    def sync(
        self,
        versions: VersionStore,
        progress: Progress | None = None,
        language_of: LanguageOf | None = None,
    ) -> int:
        """As :meth:`SearchIndex.sync`; a missing index is built, a damaged one rebuilt."""
        try:
            if self.exists():
                return super().sync(versions, progress=progress, language_of=language_of)
            log.info("building the search index in %s from git", self.path)
        except IndexDamagedError as exc:
            log.warning("%s; rebuilding it from git now", exc)
        return self.rebuild(versions, progress=progress, language_of=language_of)

    def _sink(self, sections: tantivy.Index, current: tantivy.Index) -> Sink:
        first = self._writer(sections, HEAP_BYTES)
        try:
            return Sink(first, self._writer(current, HEAP_BYTES // 4))
        except BaseException:
            first.wait_merging_threads()
            raise

    def _writer(self, index: tantivy.Index, heap: int) -> tantivy.IndexWriter:
        try:
            return index.writer(heap, WRITER_THREADS)
        except ValueError as exc:
            if "lock" in str(exc).lower():
                raise StoreError(
                    f"the search index in {self.path} is being written by another process; "
                    "try again when it has finished"
                ) from None
            raise damaged(self.path, exc) from None

    def add(
        self,
        versions: VersionStore,
        new: Sequence[Version],
        *,
        head: str | None,
        progress: Progress | None = None,
        language_of: LanguageOf | None = None,
    ) -> int:
        view = self._current()
        if view is None or (len(new) >= PARALLEL_FROM and not self.stats().policies):
            return self.rebuild(versions, progress, language_of=language_of)
        sink = self._sink(view.sections, view.current)
        try:
            indexer = Indexer(sink, view.sections.schema, view.catalog, view.searcher, language_of)
            seen = added = 0
            for batch, batch_head in batches(new, head, BATCH_VERSIONS):
                for version in batch:
                    if not indexer.holds(version):  # read no text for a repeat
                        added += indexer.add(version, read_text(versions, version))
                    seen += 1
                    if progress and (seen % REPORT_EVERY == 0 or seen == len(new)):
                        progress(seen, len(new))
                indexer.flush()
                sink.delete(META)
                sink.add(indexer.meta(batch_head))
                sink.commit()
            if added < len(new):
                log.warning(
                    "%d of the %d versions to index up to %s were in the search index "
                    "already: skipped",
                    len(new) - added,
                    len(new),
                    head[:12] if head else "(none)",
                )
            return added
        except BaseException:
            sink.rollback()
            raise
        finally:
            sink.close()

    def rebuild(
        self,
        versions: VersionStore,
        progress: Progress | None = None,
        processes: int | None = None,
        language_of: LanguageOf | None = None,
    ) -> int:
        """Build a new index in a fresh folder, then swap it in (the old one is not read).
        With ``processes`` > 1, that many workers read and analyse the versions
        (:mod:`store.index.tantivy.prepare`); tantivy's own threads index them."""
        new = fresh_folder(self.path)
        try:
            head = versions.head()
            todo = list({(v.key, v.id): v for v in versions.log()}.values())  # each once
            groups: dict[tuple[str, str], list[Version]] = {}
            for version in todo:
                groups.setdefault(version.key, []).append(version)
            schema = build_schema()
            (new / SECTIONS_DIR).mkdir()
            (new / CURRENT_DIR).mkdir()
            sections = tantivy.Index(schema, path=str(new / SECTIONS_DIR))
            current = tantivy.Index(schema, path=str(new / CURRENT_DIR))
            sink = self._sink(sections, current)
            try:
                indexer = Indexer(sink, schema, None, None, language_of)
                done = 0
                workers = min(processes or 1, MAX_PROCESSES, len(todo) // PARALLEL_PER or 1)
                for (service, type_), policy_versions, ready in _prepared(
                    versions, groups, language_of, workers
                ):
                    for i, version in enumerate(policy_versions):
                        step = ready[i]
                        if isinstance(step, Prepared):
                            indexer.add_prepared(version, step)
                        else:
                            indexer.add(version, step)
                        done += 1
                        if progress and (done % REPORT_EVERY == 0 or done == len(todo)):
                            progress(done, len(todo))
                    state = indexer.state(service, type_)
                    indexer.flush([state])
                    indexer.forget(state)
                sink.add(indexer.meta(head))
                sink.commit()
            except BaseException:
                sink.rollback()
                raise
            finally:
                sink.close()
            del sections, current
            swap_in(new, self.path)
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot build the search index in {new}: {exc}") from None
        finally:
            shutil.rmtree(new, ignore_errors=True)
        return len(todo)

    def remove(self, service: str, type_: str) -> bool:
        view = self._current()
        if view is None:
            return False
        pid = view.catalog.pid_of(service, type_)
        if pid is None:
            return False
        sink = self._sink(view.sections, view.current)
        try:
            policy = tantivy.Query.term_query(view.sections.schema, "pid", pid)
            sink.current.delete_documents_by_query(policy)
            sink.sections.delete_documents_by_query(policy)
            sink.commit()
        finally:
            sink.close()
        return True

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        with self._lock:
            self._view = None


def _prepared(
    versions: VersionStore,
    groups: dict[tuple[str, str], list[Version]],
    language_of: LanguageOf | None,
    workers: int,
) -> Iterator[tuple[tuple[str, str], list[Version], Sequence[Prepared | str | None]]]:
    """Each policy with its versions and, per version, its text read from git or, with
    workers, the version read and analysed."""
    if workers <= 1:
        texts = texts_ahead(versions, groups.values())
        for (key, policy_versions), read in zip(groups.items(), texts, strict=True):
            yield key, policy_versions, read
        return
    jobs = [
        (policy_versions, language_of(*key) if language_of else None)
        for key, policy_versions in groups.items()
    ]
    results = prepare_all(versions.path, jobs, workers)
    for (key, policy_versions), ready in zip(groups.items(), results, strict=True):
        yield key, policy_versions, ready


def _open_index(path: Path) -> tantivy.Index:
    index = tantivy.Index.open(str(path))
    index.config_reader("Manual")
    return index
