"""When to track: APScheduler 3 with one job per policy, and an upkeep thread.

Jobs have explicit ids (``track:<service>/<type>``), coalescing and at most one running
instance. Each policy runs at a stable *phase* of its interval, derived from its identity
(:func:`spread`), so the checks of many policies spread evenly over the interval instead of
keeping the moment of their first run: fetches per minute stay level. Policies never checked
run at once (spread only by the fetcher's concurrency); after a restart a policy runs at its
next slot. A transient failure brings the next run forward with exponential backoff (capped at
the interval); the run after that returns to the policy's slots. Politeness per host and the
global concurrency limit are the fetcher's, shared by all jobs. One scheduler per archive: the
writer lock (see :class:`store.lock.WriterLock`) keeps a second process out.

The :class:`Upkeep` thread does what must not wait behind a queue of checks: it brings the
search index up to date once per batch (``[schedule] index_batch_size`` changes or
``index_batch_seconds``, whichever comes first, and at shutdown), packs a repository's loose
objects long before git's ``gc.auto`` threshold, and runs ``git gc`` every ``gc_interval``
counted from the last gc recorded in state, so an archive restarted every day still packs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Container, Iterable
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from archive.config import PolicyConfig
from archive.tracking.pipeline import FAILED, Pipeline, TrackResult
from store.git.repository import GC_AUTO_THRESHOLD, GitStore, now_utc
from store.state import PolicyState, State

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_GAP = 0.5  # after a run, the next one is the first slot at least this much of an interval on
JITTER_SHARE = 0.02  # jitter is at most this share of the interval (and [schedule] jitter)
PACK_THRESHOLD = GC_AUTO_THRESHOLD // 2  # pack well before git's own threshold is passed
UPKEEP_PERIOD = 60.0  # seconds between two looks at loose objects and the gc schedule
GC_META = "upkeep.last_gc."  # + repository name: ISO time of the last gc


def job_id(policy: PolicyConfig) -> str:
    return f"track:{policy.service}/{policy.type}"


def _micros(delta: timedelta) -> int:
    return max(1, round(delta / timedelta(microseconds=1)))


def _digest(key: tuple[str, str]) -> bytes:
    return hashlib.sha256(f"{key[0]}/{key[1]}".encode()).digest()


def spread(
    keys: Iterable[tuple[str, str]], interval: timedelta
) -> dict[tuple[str, str], timedelta]:
    """Stable phases for policies that share an interval, spaced evenly over it.

    Policies are ordered by the sha256 of "service/type" and each gets the middle of its own
    1/N of the interval, so fetches per minute are level (not merely level on average, as
    with random phases). A policy's phase depends only on the identities of the policies:
    adding or removing one moves the others by at most ``interval / N``."""
    ordered = sorted(set(keys), key=_digest)
    step, n = _micros(interval), max(1, len(ordered))
    return {
        key: timedelta(microseconds=(2 * i + 1) * step // (2 * n)) for i, key in enumerate(ordered)
    }


def next_slot(phase: timedelta, interval: timedelta, after: datetime) -> datetime:
    """The first of the slots ``EPOCH + phase + k·interval`` at or after ``after``."""
    step, offset = _micros(interval), _micros(phase) if phase else 0
    since = _micros(after - EPOCH) - offset
    k = -(-since // step)  # ceiling division, exact in integers
    return EPOCH + timedelta(microseconds=offset + k * step)


def run_jitter(jitter: timedelta, interval: timedelta, policies: int) -> timedelta:
    """The jitter actually used: ``[schedule] jitter``, but at most a small share of the
    interval and never more than half a policy's share of it (so runs stay level)."""
    cap = min(interval * JITTER_SHARE, interval / (2 * max(1, policies)))
    return max(timedelta(0), min(jitter, cap))


def first_run(state: PolicyState, phase: timedelta, interval: timedelta, now: datetime) -> datetime:
    """The first run after a start: at once if never checked, else the policy's next slot
    (or sooner, to retry a transient failure)."""
    if state.last_check is None:
        return now
    due = next_slot(phase, interval, max(now, state.last_check + interval * MIN_GAP))
    if state.failures and state.last_error_transient:
        due = min(due, max(now, state.last_check + interval / 8))
    return due


def backoff(failures: int, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential backoff with jitter: base, 2·base, 4·base … capped at ``cap``."""
    delay = base * (2 ** max(0, failures - 1))
    delay = min(delay, cap)
    return delay * (0.5 + random.random() / 2)


class PhaseTrigger(BaseTrigger):
    """Fires at a policy's slots, never sooner than half an interval after the last run."""

    __slots__ = ("interval", "jitter", "phase")

    def __init__(self, phase: timedelta, interval: timedelta, jitter: timedelta) -> None:
        self.phase = phase
        self.interval = interval
        self.jitter = jitter

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        after = (previous_fire_time or now) + self.interval * MIN_GAP
        return next_slot(self.phase, self.interval, after) + self.jitter * random.random()

    def __str__(self) -> str:
        return f"phase[every {self.interval} at +{self.phase}]"


class Upkeep:
    """The index batches and the repositories' packing, on a thread of their own."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        period: float = UPKEEP_PERIOD,
        pack_threshold: int = PACK_THRESHOLD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipeline = pipeline
        self.archive = pipeline.archive
        schedule = self.archive.config.schedule
        self.batch_size = max(1, schedule.index_batch_size)
        self.batch_seconds = max(0.0, schedule.index_batch_seconds.total_seconds())
        self.period = period
        self.pack_threshold = pack_threshold
        self.clock = clock
        self.flushes = 0  # index updates done (for logs and tests)
        self._cond = threading.Condition()
        self._first_pending: float | None = None  # when the oldest unindexed change was seen
        self._stop = False
        self._thread: threading.Thread | None = None

    @property
    def repositories(self) -> dict[str, GitStore]:
        return {"versions": self.archive.versions, "snapshots": self.archive.snapshots}

    def note(self, result: TrackResult) -> None:
        """After each check: a recorded change starts (or fills) the current index batch."""
        if not result.recorded:
            return
        with self._cond:
            if self._first_pending is None:  # a new batch: the thread now has a deadline
                self._first_pending = self.clock()
                self._cond.notify()
            elif self.pipeline.pending_index_updates >= self.batch_size:
                self._cond.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="upkeep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then bring the index up to date one last time."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def _index_due(self) -> float | None:
        """Seconds until the current batch must be indexed (0: now), None without a batch."""
        if self._first_pending is None:
            return None
        if self.pipeline.pending_index_updates >= self.batch_size:
            return 0.0
        return max(0.0, self._first_pending + self.batch_seconds - self.clock())

    def _loop(self) -> None:
        next_look = self.clock()
        while True:
            with self._cond:
                while not self._stop:
                    waits = [next_look - self.clock()]
                    index_due = self._index_due()
                    if index_due is not None:
                        waits.append(index_due)
                    wait = min(waits)
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stop:
                    return
                index_due = self._index_due()
            try:
                if index_due == 0.0:
                    self.flush()
                if self.clock() >= next_look:
                    next_look = self.clock() + self.period
                    self.pack_and_gc()
            except Exception:  # upkeep must outlive one bad run; the traceback is logged
                log.exception("upkeep failed; trying again in %.0f s", self.period)
                next_look = self.clock() + self.period

    def flush(self) -> int:
        """Index what was recorded since the last update (no-op without news)."""
        with self._cond:
            if self._first_pending is None and not self.pipeline.pending_index_updates:
                return 0
            self._first_pending = None
        indexed = self.pipeline.sync_index()
        self.flushes += 1
        log.debug("search index: %d versions added", indexed)
        return indexed

    def pack_and_gc(self, now: datetime | None = None) -> list[str]:
        """Pack repositories with too many loose objects; gc those whose gc is due.

        Returns what was done, e.g. ``["pack versions", "gc snapshots"]``."""
        now = now or now_utc()
        state: State = self.archive.state
        done = []
        gc_interval = self.archive.config.schedule.gc_interval
        for name, repo in self.repositories.items():
            last = state.get_meta(GC_META + name)
            if last is None:  # a new archive (or an older one): the schedule starts now
                state.set_meta(GC_META + name, now.isoformat())
            elif now - datetime.fromisoformat(last) >= gc_interval:
                repo.gc()
                state.set_meta(GC_META + name, now.isoformat())
                done.append(f"gc {name}")
                continue
            if repo.count_loose_objects() > self.pack_threshold:
                repo.pack()
                done.append(f"pack {name}")
        if done:
            log.info("repositories: %s", ", ".join(done))
        return done


class Scheduler:
    def __init__(self, pipeline: Pipeline, *, upkeep_period: float = UPKEEP_PERIOD) -> None:
        self.pipeline = pipeline
        self.archive = pipeline.archive
        pipeline.defer_index_updates()
        self.upkeep = Upkeep(pipeline, period=upkeep_period)
        config = self.archive.config
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=max(1, config.fetch.concurrency))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone="UTC",
        )
        self._slots: dict[str, tuple[PolicyConfig, timedelta, timedelta]] = {}

    def interval_of(self, policy: PolicyConfig) -> timedelta:
        return policy.interval or self.archive.config.schedule.interval

    def add_jobs(
        self,
        policies: Iterable[PolicyConfig] | None = None,
        *,
        checking: Container[tuple[str, str]] = (),
    ) -> int:
        """Schedule ``policies`` (default: the config's) and only them: jobs of policies no
        longer among them are removed, and a policy's job is replaced only when its
        declaration or its slot changed (so ``run`` can call this again on every edit made in
        the admin UI). A new job for a policy in ``checking`` (a check was asked for, which
        runs now) starts at its next slot instead of at once. Returns the number scheduled."""
        config = self.archive.config
        policies = list(config.policies if policies is None else policies)
        states = self.archive.state.all()
        now = now_utc()
        groups: dict[timedelta, list[PolicyConfig]] = {}
        for policy in policies:
            groups.setdefault(self.interval_of(policy), []).append(policy)
        wanted: set[str] = set()
        for interval, members in groups.items():
            phases = spread((p.key for p in members), interval)
            jitter = run_jitter(config.schedule.jitter, interval, len(phases))
            for policy in members:
                wanted.add(job_id(policy))
                slot = (policy, phases[policy.key], interval)
                if self._slots.get(job_id(policy)) == slot:
                    continue
                self._slots[job_id(policy)] = slot
                state = states.get(policy.key) or PolicyState(policy.service, policy.type)
                if policy.key in checking and state.last_check is None:
                    state = dataclasses.replace(state, last_check=now)
                self._scheduler.add_job(
                    self._run,
                    PhaseTrigger(phases[policy.key], interval, jitter),
                    args=[policy],
                    id=job_id(policy),
                    name=policy.label,
                    replace_existing=True,
                    next_run_time=first_run(state, phases[policy.key], interval, now),
                )
        for gone in set(self._slots) - wanted:
            del self._slots[gone]
            if self._scheduler.get_job(gone) is not None:
                self._scheduler.remove_job(gone)
        return len(policies)

    def run_soon(self, func: Callable[..., object], *args: object) -> None:
        """Run ``func(*args)`` now on the checking threads (an admin's check request)."""
        self._scheduler.add_job(func, args=list(args), misfire_grace_time=None)

    def _run(self, policy: PolicyConfig) -> None:
        result = self.pipeline.track(policy)
        self.upkeep.note(result)
        log.log(  # one INFO line per change; the pipeline logs each failure itself
            logging.INFO if result.recorded else logging.DEBUG,
            "%s: %s%s",
            policy.label,
            result.status,
            f" ({result.reason})" if result.reason else "",
        )
        if result.status == FAILED and result.transient:
            failures = self.archive.state.get(policy.service, policy.type).failures
            delay = backoff(
                failures, self.archive.config.schedule.retry_backoff, self.interval_of(policy)
            )
            job = self._scheduler.get_job(job_id(policy))
            if job is not None:
                job.modify(next_run_time=now_utc() + delay)

    def start(
        self, *, paused: bool = False, policies: Iterable[PolicyConfig] | None = None
    ) -> None:
        self.add_jobs(policies)
        self.upkeep.start()
        self._scheduler.start(paused=paused)

    def shutdown(self, wait: bool = True) -> None:
        """Stop scheduling, let running checks finish (``wait``), then index their changes."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        self.upkeep.stop()

    def jobs(self) -> list[tuple[str, datetime | None]]:
        return [(j.id, j.next_run_time) for j in self._scheduler.get_jobs()]
