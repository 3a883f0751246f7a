"""``policy-archive run``: the scheduler, the alert worker and (if given) a web server in one
process.

The web server is built by the caller (the CLI) from the opened writer archive, so tracking
never imports the web UI. It is built (and its port bound) before the first check, so a busy
port stops the run before anything is fetched. A :class:`Reporter` hears of each check as it
ends, and once if every first check of a new archive failed (what ``run`` prints).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Protocol

from archive.alerts import LISTENERS, Worker
from archive.app import Archive
from archive.config import Config, PolicyConfig
from archive.fetch import Fetcher
from archive.manage.pickup import Pickup
from archive.tracking.pipeline import FAILED, Pipeline, TrackResult
from archive.tracking.scheduler import Scheduler
from store.state import PolicyState

log = logging.getLogger(__name__)


class Server(Protocol):
    """A server that serves until closed (``webui.server.WebServer``)."""

    @property
    def url(self) -> str: ...

    def run(self) -> None: ...

    def close(self) -> None: ...


ServerFactory = Callable[[Archive], Server]
"""Builds the web server over the writer archive that ``run_archive`` opened."""


class Reporter(Protocol):
    """Hears what a run does, as it happens (``run`` prints it; called from checking threads)."""

    def started(self, policies: int, url: str | None) -> None:
        """Tracking has started (``url``: where the web UI is served, if it is)."""

    def checked(self, result: TrackResult) -> None:
        """One check ended."""

    def first_checks_failed(self, results: list[TrackResult]) -> None:
        """Every first check of the policies never checked before failed (said once)."""


class FirstChecks:
    """Watches the first checks of the policies never checked before: were they all failures?"""

    def __init__(self, keys: set[tuple[str, str]]) -> None:
        self._waiting = set(keys)
        self._results: list[TrackResult] = []
        self._lock = threading.Lock()

    def note(self, result: TrackResult) -> list[TrackResult] | None:
        """The first checks' results when ``result`` was the last of them and all failed."""
        with self._lock:
            key = (result.service, result.type)
            if key not in self._waiting:
                return None
            self._waiting.discard(key)
            self._results.append(result)
            if self._waiting or not all(r.status == FAILED for r in self._results):
                return None
            return list(self._results)


class ReportingPipeline(Pipeline):
    """A pipeline that tells ``reporter`` of every check it ends (the scheduler's jobs call
    ``track``)."""

    def __init__(self, archive: Archive, fetcher: Fetcher, reporter: Reporter) -> None:
        super().__init__(archive, fetcher)
        self.reporter = reporter
        states = archive.state.all()
        never = {p.key for p in archive.config.policies if _never_checked(states.get(p.key))}
        self.first_checks = FirstChecks(never)

    def track(self, policy: PolicyConfig) -> TrackResult:
        result = super().track(policy)
        self.reporter.checked(result)
        failed = self.first_checks.note(result)
        if failed is not None:
            self.reporter.first_checks_failed(failed)
        return result


def _never_checked(state: PolicyState | None) -> bool:
    return state is None or state.last_check is None


def run_archive(
    config: Config,
    *,
    web: ServerFactory | None = None,
    stop: threading.Event | None = None,
    create: bool = True,
    reporter: Reporter | None = None,
) -> None:
    """Track every policy on schedule (and serve ``web(archive)``, if given) until ``stop`` is
    set or SIGINT/TERM. The writer attaches the alerts and runs their worker; ``reporter``
    hears of each check. An error building the server (a busy port) ends the run before the
    first check."""
    stop = stop or threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main:

        def _stop(signum: int, frame: FrameType | None) -> None:
            log.warning("stopping (signal %d)", signum)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _stop)
    archive = Archive.open(config, writer=True, create=create, listeners=LISTENERS)
    fetcher = Fetcher(config.fetch)
    pipeline = (
        Pipeline(archive, fetcher)
        if reporter is None
        else ReportingPipeline(archive, fetcher, reporter)
    )
    scheduler = Scheduler(pipeline)
    pickup = Pickup(scheduler)  # the admin UI's edits and check requests, without a restart
    server: Server | None = None
    server_thread = worker = None
    try:
        if web is not None:
            server = web(archive)
        worker = Worker(archive)
        worker.start()
        if server is not None:
            server_thread = threading.Thread(target=server.run, name="web", daemon=True)
            server_thread.start()
            log.warning("web UI at %s", server.url)
        log.warning("tracking %d policies; stop with Ctrl-C", len(config.policies))
        if reporter is not None:
            reporter.started(len(config.policies), server.url if server else None)
        scheduler.start(policies=pickup.active())
        pickup.start()
        stop.wait()
    finally:
        pickup.stop()
        scheduler.shutdown(wait=True)
        if worker is not None:
            worker.stop()
        if server is not None:
            server.close()
        if server_thread is not None:
            server_thread.join(timeout=10)
        fetcher.close()
        archive.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
