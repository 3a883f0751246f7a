"""The archive as one opened thing: config plus the stores, built in one place and passed down.

``Archive.open(config, writer=True)`` takes the data directory's writer lock, clears what a
crashed writer left behind, and catches the derived stores (search index, alert outbox) up with
git, so a crash between a commit and its follow-up work loses nothing. Readers (the web UI)
open without the lock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Iterable
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any

from archive.config import Config
from archive.errors import StoreError
from archive.tracking.events import Dispatcher
from store.git.repository import GitRepo, is_repository
from store.git.snapshots import SnapshotStore
from store.git.versions import VersionStore
from store.lock import WriterLock
from store.paths import check_collisions, policy_path
from store.state import State

if TYPE_CHECKING:
    from store.index import SearchIndex

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def _aliases(config: Config) -> dict[str, tuple[str, str]]:
    """File path → the (service, type) the config names, for versions whose commits predate
    identity trailers."""
    out = {}
    for policy in config.policies:
        try:
            out[policy_path(*policy.key)] = policy.key
        except StoreError:
            continue
    return out


Listener = Callable[["Archive"], None]
"""Attaches a feature to a writer archive: subscribes to ``archive.events``, registers its
catch-up with ``archive.on_catch_up`` (Open Terms Archive style: the caller attaches them)."""


class Archive:
    def __init__(self, config: Config, *, writer: bool = False, create: bool = False) -> None:
        self.config = config
        self.writer = writer
        self._lock = WriterLock(config.data_dir) if writer else None
        self.events = Dispatcher()
        self._catch_ups: list[Callable[[], object]] = []
        self._closers: list[Callable[[], None]] = []
        try:
            check_collisions(p.key for p in config.policies)
        except StoreError as exc:
            raise StoreError(f"{config.path or 'config'}: {exc}") from None
        if not create and not is_repository(config.archive_dir):
            raise StoreError(
                f"no archive in {config.data_dir}; run `policy-archive init` first "
                "(or pass --data-dir)"
            )
        if self._lock is not None:
            self._lock.acquire()
        try:
            if writer:  # before anything opens a repository for writing (config.lock & co.)
                for folder in (config.archive_dir, config.snapshots_dir):
                    for cleaned in GitRepo.recover_path(folder):
                        log.warning("recovered from an interrupted write: %s", cleaned)
            self.versions = VersionStore(
                config.archive_dir, create=create or writer, aliases=_aliases(config)
            )
            self.snapshots = SnapshotStore(config.snapshots_dir, create=create or writer)
            self.state = State(config.state_path, config.database.url)
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(
        cls,
        config: Config,
        *,
        writer: bool = False,
        create: bool = False,
        listeners: Iterable[Listener] = (),
    ) -> Archive:
        """Open the archive; a writer reconciles state with git, attaches ``listeners`` (the
        features that follow its events, such as ``archive.alerts.LISTENERS``: the caller
        chooses them, as the CLI and the runner do) and then catches them up with git.
        Readers attach nothing.
        """
        archive = cls(config, writer=writer, create=create)
        if writer:
            try:
                archive.reconcile_state()
                for attach in listeners:
                    attach(archive)
                archive.catch_up()
            except BaseException:
                archive.close()
                raise
        return archive

    # ------------------------------------------------------------------ state vs git

    def reconcile_state(self) -> int:
        """Make state's cached text ids agree with git's HEAD; returns the rows corrected.

        Git decides what the current text is. A row whose ``text_hash`` is not the blob id in
        HEAD (a kill between a commit and the state update, a restored backup, a hand edit)
        is corrected and logged, and its body hash dropped so the next check extracts again.
        """
        corrected = 0
        for key, st in self.state.all().items():
            try:
                blob = self.versions.current_blob(*key)
            except StoreError:  # a name that has no file name: nothing of it is in git
                blob = None
            if st.text_hash == blob:
                continue
            if blob is not None and st.text_hash and len(st.text_hash) == 64:
                # state from before text ids were git blob ids: upgrade without a warning
                text = self.versions.current_text(*key) or ""
                same = hashlib.sha256(text.encode("utf-8")).hexdigest() == st.text_hash
                self.state.put(
                    dataclasses.replace(
                        st, text_hash=blob, body_hash=st.body_hash if same else None
                    )
                )
                continue
            log.warning(
                "state of %s %s was out of step with git (state says %s, git's HEAD holds %s); "
                "corrected from git",
                key[0],
                key[1],
                st.text_hash or "no text",
                blob or "no text",
            )
            self.state.put(dataclasses.replace(st, text_hash=blob, body_hash=None, validators=()))
            corrected += 1
        return corrected

    # ------------------------------------------------------------------ derived stores

    @cached_property
    def index(self) -> SearchIndex:
        from store.index import open_index

        idx = open_index(
            self.config.index_dir,
            readers=self.config.web.search_readers,
            engine=self.config.search.engine,
            url=self.config.search_url,
            replicas=self.config.search.replicas,
        )
        self._closers.append(idx.close)
        return idx

    def on_catch_up(self, func: Callable[[], object]) -> None:
        """Run ``func`` now and after every batch of commits (idempotent catch-up with git);
        what it returns is ignored."""
        self._catch_ups.append(func)

    def on_close(self, func: Callable[[], None]) -> None:
        self._closers.append(func)

    def sync_index(self, progress: Progress | None = None) -> int:
        """Index every version committed since the index last caught up, each policy with its
        language (config, else the one an import recorded), as ``reindex`` does."""
        from archive.search import language_resolver

        return self.index.sync(
            self.versions, progress=progress, language_of=language_resolver(self)
        )

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
                store.close()
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
