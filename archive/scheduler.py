"""When to track: APScheduler 3 with one job per policy.

Jobs have explicit ids (``track:<service>/<type>``), the policy's interval with jitter,
coalescing and at most one running instance. The first run of each job is derived from the
last check in state, so a restart does not refetch everything; a transient failure brings the
next run forward with exponential backoff (capped at the interval). Politeness per host and the
global concurrency limit are the fetcher's, shared by all jobs. One scheduler per archive: the
writer lock (see :class:`store.lock.WriterLock`) keeps a second process out.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from archive.config import PolicyConfig
from archive.pipeline import FAILED, Pipeline
from store.gitrepo import now_utc
from store.state import PolicyState

log = logging.getLogger(__name__)


def job_id(policy: PolicyConfig) -> str:
    return f"track:{policy.service}/{policy.type}"


def first_run(
    state: PolicyState, interval: timedelta, now: datetime, stagger: timedelta
) -> datetime:
    """Next run from the last check: overdue (or never checked) policies start soon, spread
    over ``stagger`` so a restart does not hit every site at once."""
    if state.last_check is None:
        return now + stagger * random.random()
    due = state.last_check + interval
    if state.failures and state.last_error_transient:
        due = min(due, state.last_check + interval / 8)
    return max(due, now + stagger * random.random())


def backoff(failures: int, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential backoff with jitter: base, 2·base, 4·base … capped at ``cap``."""
    delay = base * (2 ** max(0, failures - 1))
    delay = min(delay, cap)
    return delay * (0.5 + random.random() / 2)


class Scheduler:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.archive = pipeline.archive
        config = self.archive.config
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=max(1, config.fetch.concurrency))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone="UTC",
        )

    def interval_of(self, policy: PolicyConfig) -> timedelta:
        return policy.interval or self.archive.config.schedule.interval

    def add_jobs(self) -> int:
        config = self.archive.config
        states = self.archive.state.all()
        now = now_utc()
        stagger = min(config.schedule.jitter, config.schedule.interval)
        for policy in config.policies:
            interval = self.interval_of(policy)
            state = states.get(policy.key) or PolicyState(policy.service, policy.type)
            self._scheduler.add_job(
                self._run,
                IntervalTrigger(
                    seconds=interval.total_seconds(),
                    jitter=int(config.schedule.jitter.total_seconds()),
                ),
                args=[policy],
                id=job_id(policy),
                name=policy.label,
                replace_existing=True,
                next_run_time=first_run(state, interval, now, stagger),
            )
        self._scheduler.add_job(
            self._gc,
            IntervalTrigger(seconds=config.schedule.gc_interval.total_seconds()),
            id="maintenance:gc",
            name="git gc",
            replace_existing=True,
        )
        return len(config.policies)

    def _run(self, policy: PolicyConfig) -> None:
        result = self.pipeline.track(policy)
        log.info(
            "%s: %s%s", policy.label, result.status, f" ({result.reason})" if result.reason else ""
        )
        if result.status == FAILED and result.transient:
            failures = self.archive.state.get(policy.service, policy.type).failures
            delay = backoff(
                failures, self.archive.config.schedule.retry_backoff, self.interval_of(policy)
            )
            job = self._scheduler.get_job(job_id(policy))
            if job is not None:
                job.modify(next_run_time=now_utc() + delay)

    def _gc(self) -> None:
        for repo in (self.archive.versions.git, self.archive.snapshots.git):
            repo.gc()

    def start(self, *, paused: bool = False) -> None:
        self.add_jobs()
        self._scheduler.start(paused=paused)

    def shutdown(self, wait: bool = True) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    def jobs(self) -> list[tuple[str, datetime | None]]:
        return [(j.id, j.next_run_time) for j in self._scheduler.get_jobs()]
