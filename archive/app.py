"""The archive as one opened thing: config plus the stores, built in one place and passed down.

``Archive.open(config, writer=True)`` takes the data directory's writer lock, clears what a
crashed writer left behind, and catches the derived stores (search index, alert outbox) up with
git, so a crash between a commit and its follow-up work loses nothing. Readers (the web UI)
open without the lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any

from archive.config import Config
from archive.errors import StoreError
from archive.events import Dispatcher
from store.lock import WriterLock
from store.paths import check_collisions
from store.snapshots import SnapshotStore
from store.state import State
from store.versions import VersionStore

if TYPE_CHECKING:
    from store.index import SearchIndex

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class Archive:
    def __init__(self, config: Config, *, writer: bool = False, create: bool = False) -> None:
        self.config = config
        self.writer = writer
        self._lock = WriterLock(config.data_dir) if writer else None
        self.events = Dispatcher()
        self._catch_ups: list[Callable[[], None]] = []
        self._closers: list[Callable[[], None]] = []
        try:
            check_collisions(p.key for p in config.policies)
        except StoreError as exc:
            raise StoreError(f"{config.path or 'config'}: {exc}") from None
        if not create and not (config.archive_dir / ".git").is_dir():
            raise StoreError(
                f"no archive in {config.data_dir}; run `policy-archive init` first "
                "(or pass --data-dir)"
            )
        if self._lock is not None:
            self._lock.acquire()
        try:
            self.versions = VersionStore(config.archive_dir, create=create)
            self.snapshots = SnapshotStore(config.snapshots_dir, create=create)
            self.state = State(config.state_path)
            if writer:
                for repo in (self.versions.git, self.snapshots.git):
                    for cleaned in repo.recover():
                        log.warning("recovered from an interrupted write: %s", cleaned)
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, config: Config, *, writer: bool = False, create: bool = False) -> Archive:
        archive = cls(config, writer=writer, create=create)
        if writer:
            try:
                archive._attach_listeners()
                archive.catch_up()
            except BaseException:
                archive.close()
                raise
        return archive

    def _attach_listeners(self) -> None:
        """Listeners that need the writer: alerts. Each feature registers itself here."""
        from archive.notify import attach as attach_notify

        attach_notify(self)

    # ------------------------------------------------------------------ derived stores

    @cached_property
    def index(self) -> SearchIndex:
        from store.index import open_index

        idx = open_index(self.config.index_dir)
        self._closers.append(idx.close)
        return idx

    def on_catch_up(self, func: Callable[[], None]) -> None:
        """Run ``func`` now and after every batch of commits (idempotent catch-up with git)."""
        self._catch_ups.append(func)

    def on_close(self, func: Callable[[], None]) -> None:
        self._closers.append(func)

    def sync_index(self, progress: Progress | None = None) -> int:
        """Index every version committed since the index last caught up."""
        return self.index.sync(self.versions, progress=progress)

    def catch_up(self, progress: Progress | None = None) -> None:
        """Bring every derived store up to git (after commits, and when a writer opens)."""
        self.sync_index(progress)
        for func in self._catch_ups:
            func()

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()
        for name in ("versions", "snapshots"):
            store = self.__dict__.get(name)
            if store is not None:
                store.git.close()
        state = self.__dict__.get("state")
        if state is not None:
            state.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Archive {self.config.data_dir} writer={self.writer}>"

    def describe(self) -> dict[str, Any]:
        return {"data_dir": str(self.config.data_dir), "policies": len(self.config.policies)}
