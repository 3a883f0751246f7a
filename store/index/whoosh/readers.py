"""Readers of the index shared by every thread of a process: a small pool of searchers.

whoosh's searchers are not meant for concurrent use by several threads (their files have a
position), and each one held ~140 MB resident on the OTA corpus (copies of the index's files:
see :mod:`store.index.whoosh.mapped`, which removes them), so a searcher per thread made memory
grow with the server's thread count. Instead a process
holds at most ``size`` searchers; a query borrows one (waiting for one to be free, within its
time budget) and gives it back. Before lending a searcher the pool checks, with one ``stat``
and one directory listing, whether the index changed (a commit, or a rebuilt folder swapped
in); only then is a new searcher opened, and the catalog read (shared, see
:class:`~store.index.whoosh.catalog.CatalogCache`).

Any error while reading the index's files means it is damaged: :func:`~store.index.query.damaged`
turns it into an :class:`IndexDamagedError` that says how to fix it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from whoosh import index
from whoosh.searching import Searcher

from store.errors import StoreError
from store.index.budget import Budget
from store.index.query import IndexBusyError, damaged
from store.index.whoosh.catalog import Catalog, CatalogCache
from store.index.whoosh.mapped import MappedStorage
from store.index.whoosh.schema import SCHEMA_VERSION, build_schema

log = logging.getLogger(__name__)

READ_ERRORS = (
    OSError,
    EOFError,
    struct.error,
    zlib.error,
    pickle.UnpicklingError,
    ValueError,
    KeyError,
    IndexError,
    index.IndexError,  # whoosh's: EmptyIndexError, IndexVersionError, …
)
"""What whoosh raises on a truncated, missing or garbled file."""

_TOC = re.compile(r"^_MAIN_(\d+)\.toc$")
SWAP_RETRIES = 3
WAIT = 30.0
"""Seconds a caller without a time budget waits for a free searcher."""


def generation(path: Path) -> tuple[int, int] | None:
    """Which index is in ``path`` now: (the folder's inode, its latest table of contents);
    None when there is no index there."""
    try:
        folder = os.stat(path).st_ino
        names = os.listdir(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise damaged(path, exc) from None
    tocs = [int(m.group(1)) for m in map(_TOC.match, names) if m]
    return (folder, max(tocs)) if tocs else None


def current_layout(ix: index.Index) -> bool:
    """Whether ``ix`` has this version's schema (else it must be rebuilt)."""
    if set(ix.schema.names()) != set(build_schema().names()):
        return False
    with ix.searcher() as searcher:
        meta = searcher.document(key="meta")
    return (meta.get("schema_version") if meta else None) in (None, SCHEMA_VERSION)


@dataclass
class Reader:
    """A searcher of one index generation, with that generation's catalog and indexed head."""

    searcher: Searcher
    catalog: Catalog
    head: str | None
    generation: tuple[int, int]


class ReaderPool:
    """At most ``size`` readers of the latest index in ``path``, lent to one thread at a time."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self._cache = CatalogCache(keep=size)
        self._cond = threading.Condition()
        self._idle: list[Reader | None] = [None] * size
        self._ix: tuple[int, index.Index | None] | None = None  # folder inode, its index
        self._ix_lock = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def reader(self, budget: Budget | None = None) -> Iterator[Reader | None]:
        """A reader of the index as it is now (None: there is none, or it must be rebuilt)."""
        slot = self._take(budget)
        reader: Reader | None = None
        try:
            reader = self._fresh(slot)
            if reader is None:
                yield None
                return
            try:
                yield reader
            except READ_ERRORS as exc:
                reader.searcher.close()  # never lend a searcher that failed again
                reader = None
                raise damaged(self.path, exc) from None
        finally:
            if slot is not None and slot is not reader and not slot.searcher.is_closed:
                slot.searcher.close()
            self._give_back(reader)

    def _take(self, budget: Budget | None) -> Reader | None:
        with self._cond:
            while not self._idle:
                if self._closed:
                    break
                wait = budget.remaining_wall() if budget is not None else WAIT
                if wait <= 0 or not self._cond.wait(wait):
                    raise IndexBusyError("every search is busy; try again in a few seconds")
            if self._closed:
                raise StoreError("the search index is closed")
            return self._idle.pop()

    def _give_back(self, slot: Reader | None) -> None:
        with self._cond:
            if self._closed:
                if slot is not None:
                    slot.searcher.close()
                return
            self._idle.append(slot)
            self._cond.notify()

    def _fresh(self, slot: Reader | None) -> Reader | None:
        """``slot`` if it reads the latest index, else a new reader (the caller closes
        ``slot``)."""
        for _ in range(SWAP_RETRIES):
            gen = generation(self.path)
            if slot is not None and slot.generation == gen:
                return slot
            if gen is None:
                return None
            try:
                return self._open(gen)
            except READ_ERRORS as exc:
                if generation(self.path) == gen:  # not a swap or commit under our feet
                    raise damaged(self.path, exc) from None
        raise IndexBusyError("the search index keeps changing; try again in a few seconds")

    def _open(self, gen: tuple[int, int]) -> Reader | None:
        ix = self._index(gen[0])
        if ix is None:
            return None
        searcher = ix.searcher()
        try:
            catalog = self.catalog(searcher)
            meta = searcher.document(key="meta")
        except BaseException:
            searcher.close()
            raise
        return Reader(searcher, catalog, meta.get("head") if meta else None, gen)

    def _index(self, folder: int) -> index.Index | None:
        """The whoosh index of the folder with this inode (None: an older layout)."""
        with self._ix_lock:
            if self._ix is not None and self._ix[0] == folder:
                return self._ix[1]
            ix = MappedStorage(str(self.path)).open_index()
            if not current_layout(ix):
                log.warning(
                    "the search index in %s has an older layout: `policy-archive reindex` "
                    "rebuilds it",
                    self.path,
                )
                ix = None
            old, self._ix = self._ix, (folder, ix)
            if old is not None and old[1] is not None:
                old[1].close()
            return ix

    def catalog(self, searcher: Searcher) -> Catalog:
        """The catalog of the generation ``searcher`` reads (a writer's, say)."""
        leaves = (
            [r for r, _ in searcher.reader().leaf_readers()] if searcher.doc_count_all() else []
        )
        return self._cache.get(leaves)

    def exists(self) -> bool:
        """Whether there is an index of the current layout to read."""
        gen = generation(self.path)
        if gen is None:
            return False
        try:
            return self._index(gen[0]) is not None
        except READ_ERRORS as exc:
            raise damaged(self.path, exc) from None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for slot in idle:
            if slot is not None:
                slot.searcher.close()
        with self._ix_lock:
            if self._ix is not None and self._ix[1] is not None:
                self._ix[1].close()
            self._ix = None
