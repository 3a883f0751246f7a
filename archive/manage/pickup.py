"""What the writer does with the admin UI's edits and requests.

In ``run``, the :class:`Pickup` thread looks every :data:`PERIOD` seconds at the declarations
repository's HEAD and at the pause flags: when either moved, the scheduler's jobs are brought in
line (added, replaced, removed) and the archive's config carries the policies as they are now,
without a restart. It also claims the pending check requests and runs them on the scheduler's
checking threads.

When no process holds the writer lock (the UI is served by ``serve`` alone),
:func:`run_directly` takes the lock itself and carries the pending requests out.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from datetime import UTC, datetime, timedelta

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import Config, PolicyConfig
from archive.errors import ConfigError
from archive.fetch import Fetcher
from archive.manage.declared import LivePolicies
from archive.manage.pauses import Pauses, split
from archive.manage.requests import CHECKS, FIRST_CHECK, Outcome, Request, Requests
from archive.tracking.pipeline import CHANGED, FAILED, FIRST, UNCHANGED, Pipeline
from archive.tracking.reextract import reextract_policy
from archive.tracking.scheduler import Scheduler
from store.errors import StoreError, WriterLockedError

log = logging.getLogger(__name__)

PERIOD = 1.0  # seconds between two looks at the declarations, the pauses and the requests
RACE = timedelta(seconds=10)  # a first record this close to a first check's request is its own


def ready(request: Request, policy: PolicyConfig | None) -> bool:
    """Whether to claim ``request`` now: a first check is asked for just before its policy's
    declaration is committed, so one whose policy is not there yet waits a little."""
    if policy is not None or request.kind != FIRST_CHECK:
        return True
    return datetime.now(UTC) - request.requested_at > RACE


def carry_out(
    archive: Archive, pipeline: Pipeline, request: Request, policy: PolicyConfig | None
) -> Outcome:
    """Run one request with the writer's pipeline; the outcome is what the page shows."""
    if policy is None:
        return Outcome(FAILED, f"{request.service} {request.type} is no longer declared")
    before = archive.versions.current(policy.service, policy.type)
    if request.kind in CHECKS:
        result = pipeline.track(policy)
        if (
            request.kind == FIRST_CHECK
            and result.status == UNCHANGED
            and before is not None
            and before.date >= request.requested_at - RACE
        ):
            # a scheduled check of the new policy ran while this request waited: its record
            # is the answer (git decided; this check found the same text)
            history = archive.versions.history(policy.service, policy.type)
            kind = FIRST if len(history) == 1 else CHANGED
            previous = history[-2].id if len(history) > 1 else None
            return Outcome(kind, None, before.id, previous)
        version = result.version.id if result.version is not None else None
        previous = before.id if before is not None and version is not None else None
        return Outcome(result.status, result.reason, version, previous)
    done = reextract_policy(archive, policy)
    if done.version is not None:
        pipeline.sync_index()
    version = done.version.id if done.version is not None else None
    previous = before.id if before is not None and version is not None else None
    return Outcome(done.status, done.reason, version, previous)


class Pickup:
    """``run``'s watcher: live policies for the scheduler, and the admin UI's requests."""

    def __init__(self, scheduler: Scheduler, *, period: float = PERIOD) -> None:
        self.scheduler = scheduler
        self.pipeline = scheduler.pipeline
        self.archive = scheduler.archive
        self.period = period
        self.live = LivePolicies(self.archive.config)
        self.pauses = Pauses(self.archive.state)
        self.requests = Requests(self.archive.state)
        self._seen: tuple[tuple[PolicyConfig, ...], frozenset[tuple[str, str]]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def active(self) -> list[PolicyConfig]:
        """The policies to schedule now: every live one that is not paused."""
        return self._apply(self.live.current(), self.pauses.paused())

    def _apply(
        self, policies: tuple[PolicyConfig, ...], paused: frozenset[tuple[str, str]]
    ) -> list[PolicyConfig]:
        """Make ``policies`` the archive's and return the active ones (not paused)."""
        self._seen = (policies, paused)
        self.archive.config = dataclasses.replace(self.archive.config, policies=policies)
        return split(policies, paused)[0]

    def start(self) -> None:
        self.requests.requeue_running()
        self._thread = threading.Thread(target=self._loop, name="pickup", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.tick()
            except (ConfigError, StoreError) as exc:  # a broken edit: keep the last good set
                log.warning("admin edits not picked up: %s", exc)
            except Exception:  # the watcher must outlive one bad look; logged in full
                log.exception("pickup failed; trying again in %.0f s", self.period)

    def tick(self) -> None:
        """One look: reschedule if the policies or pauses moved, then claim requests."""
        policies = self.live.current()
        paused = self.pauses.paused()
        pending = self.requests.pending()
        if (policies, paused) != self._seen:
            active = self._apply(policies, paused)
            checking = {(r.service, r.type) for r in pending if r.kind in CHECKS}
            count = self.scheduler.add_jobs(active, checking=checking)
            log.info("policies changed: %d scheduled, %d paused", count, len(paused))
        for request in pending:
            policy = self.live.find(request.service, request.type)
            if ready(request, policy) and self.requests.claim(request.id):
                self.scheduler.run_soon(self._carry, request)

    def _carry(self, request: Request) -> None:
        try:
            outcome = carry_out(
                self.archive,
                self.pipeline,
                request,
                self.live.find(request.service, request.type),
            )
        except Exception as exc:  # one request's bug is its outcome, not the end of run
            log.exception("request %d failed", request.id)
            outcome = Outcome(FAILED, f"internal error: {type(exc).__name__}: {exc}")
        self.requests.finish(request.id, outcome)


def run_directly(config: Config) -> bool:
    """Carry out the pending requests as the writer, if no other process is one.

    Returns False (leaving them for the writer, ``run``, to claim) when the lock is held."""
    live = LivePolicies(config)
    try:
        archive = Archive.open(live.config_now(), writer=True, listeners=LISTENERS)
    except WriterLockedError:
        return False
    try:
        requests = Requests(archive.state)
        with Fetcher(archive.config.fetch) as fetcher:
            pipeline = Pipeline(archive, fetcher)
            skipped: set[int] = set()
            while pending := [r for r in requests.pending() if r.id not in skipped]:
                for request in pending:
                    policy = live.find(request.service, request.type)
                    if not ready(request, policy):
                        skipped.add(request.id)  # the thread started after its commit runs it
                        continue
                    if not requests.claim(request.id):
                        continue
                    try:
                        outcome = carry_out(archive, pipeline, request, policy)
                    except Exception as exc:  # recorded as the request's outcome
                        log.exception("request %d failed", request.id)
                        outcome = Outcome(FAILED, f"internal error: {type(exc).__name__}: {exc}")
                    requests.finish(request.id, outcome)
    finally:
        archive.close()
    return True
