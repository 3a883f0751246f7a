"""The scheduler: explicit job ids, phases spread over the interval, next run derived from
state, backoff, a real run."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.fetch import Fetcher
from archive.tracking.pipeline import Pipeline
from archive.tracking.scheduler import (
    EPOCH,
    PhaseTrigger,
    Scheduler,
    backoff,
    first_run,
    job_id,
    next_slot,
    run_jitter,
    spread,
)
from store.state import PolicyState
from tests.conftest import seed_text
from tests.pages import policy_page

NOW = datetime(2026, 1, 1, 12, 0, 7, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def keys(n: int) -> list[tuple[str, str]]:
    return [(f"Service {i}", "Privacy Policy") for i in range(n)]


def per_bucket(times: list[datetime], start: datetime, bucket: timedelta, n: int) -> list[int]:
    counts = Counter(int((t - start) / bucket) for t in times)
    return [counts.get(i, 0) for i in range(n)]


def test_phases_are_stable_distinct_and_level_over_the_interval():
    interval = 6 * HOUR
    phases = spread(keys(1000), interval)
    assert phases == spread(reversed(keys(1000)), interval)  # order of the config: irrelevant
    assert len(set(phases.values())) == 1000
    assert all(timedelta(0) < p < interval for p in phases.values())
    minutes = per_bucket([EPOCH + p for p in phases.values()], EPOCH, MINUTE, 360)
    mean = sum(minutes) / len(minutes)
    assert max(minutes) / mean <= 1.3, minutes
    grown = spread(keys(1001), interval)  # one more policy moves the others a little
    assert max(abs(grown[k] - phases[k]) for k in phases) <= interval / 1000


def test_next_slot_is_the_first_time_at_the_phase_at_or_after():
    interval, phase = 2 * MINUTE, timedelta(seconds=37, microseconds=5)
    slot = next_slot(phase, interval, NOW)
    assert NOW <= slot < NOW + interval
    assert (slot - EPOCH - phase) % interval == timedelta(0)
    assert next_slot(phase, interval, slot) == slot
    assert next_slot(phase, interval, slot + timedelta(microseconds=1)) == slot + interval


def test_first_runs_now_if_never_checked_else_at_the_phase():
    interval, phase = 6 * HOUR, timedelta(minutes=40)
    assert first_run(PolicyState("A", "T"), phase, interval, NOW) == NOW  # no stagger
    recent = PolicyState("A", "T", last_check=NOW - HOUR)
    due = first_run(recent, phase, interval, NOW)
    assert due == next_slot(phase, interval, NOW + 2 * HOUR)  # ≥ half an interval after
    assert (due - EPOCH - phase) % interval == timedelta(0)
    overdue = PolicyState("A", "T", last_check=NOW - 10 * HOUR)
    assert first_run(overdue, phase, interval, NOW) == next_slot(phase, interval, NOW)
    failing = PolicyState(
        "A", "T", last_check=NOW - HOUR, failures=2, last_error="x", last_error_transient=True
    )
    assert first_run(failing, phase, 16 * HOUR, NOW) == NOW + HOUR  # retried soon


def test_the_trigger_keeps_the_phase_whatever_the_jitter_and_late_runs():
    interval, phase, jitter = 2 * MINUTE, timedelta(seconds=11), timedelta(seconds=2)
    trigger = PhaseTrigger(phase, interval, jitter)
    fire = trigger.get_next_fire_time(None, NOW)
    for _ in range(50):  # jitter never accumulates: every run is within jitter of a slot
        offset = (fire - EPOCH - phase) % interval
        assert timedelta(0) <= offset <= jitter
        previous, fire = fire, trigger.get_next_fire_time(fire, NOW)
        assert interval - jitter <= fire - previous <= interval + jitter
    late = NOW + timedelta(seconds=97)  # a retry off the grid: back to the slots after it
    back = trigger.get_next_fire_time(late, late)
    assert back - late >= interval / 2
    assert (back - EPOCH - phase) % interval <= jitter


def test_jitter_stays_small_next_to_the_interval_and_to_each_policys_share():
    assert run_jitter(timedelta(minutes=5), 6 * HOUR, 10) == timedelta(minutes=5)
    assert run_jitter(timedelta(minutes=5), 2 * MINUTE, 1) == 2 * MINUTE * 0.02
    assert run_jitter(timedelta(minutes=5), 6 * HOUR, 1000) == 6 * HOUR / 2000


def test_backoff_doubles_and_is_capped():
    base = timedelta(minutes=10)
    assert base / 2 <= backoff(1, base, 6 * HOUR) <= base
    assert 4 * base / 2 <= backoff(3, base, 6 * HOUR) <= 4 * base
    assert backoff(30, base, 6 * HOUR) <= 6 * HOUR


def test_a_restarted_scheduler_spreads_checked_policies_and_starts_new_ones_at_once(make_config):
    interval = 10 * MINUTE
    policies = [
        {"service": s, "type": t, "url": f"https://{i}.example/p", "interval": "10m"}
        for i, (s, t) in enumerate(keys(330))
    ]
    config = make_config(policies)
    with (
        Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive,
        Fetcher(config.fetch) as fetcher,
    ):
        checked = datetime.now(UTC) - MINUTE  # the first round: all checked at once
        for policy in config.policies[:300]:
            archive.state.put(PolicyState(policy.service, policy.type, last_check=checked))
        scheduler = Scheduler(Pipeline(archive, fetcher))
        started = datetime.now(UTC).replace(microsecond=0)  # now_utc(): whole seconds
        scheduler.start(paused=True)
        try:
            runs = dict(scheduler.jobs())
        finally:
            scheduler.shutdown()
    new = [runs[job_id(p)] for p in config.policies[300:]]
    assert all(started <= t <= started + timedelta(seconds=30) for t in new)
    later = [runs[job_id(p)] for p in config.policies[:300]]
    assert all(checked + interval / 2 <= t < checked + interval * 1.5 for t in later)
    start = min(later)
    buckets = per_bucket(later, start, MINUTE, 10)  # 30 a minute, not 300 in one
    assert max(buckets) / (sum(buckets) / 10) <= 1.3, buckets


def test_jobs_run_and_a_restart_does_not_refetch(make_config, fixture_server):
    fixture_server.set("/p", policy_page("A", seed_text("workoptima-privacy-policy.txt")))
    config = make_config(
        [
            {
                "service": "A",
                "type": "T",
                "url": fixture_server.url("/p"),
                "select": "main",
                "interval": "1h",
            }
        ],
        schedule={"jitter": 1},
    )
    with (
        Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive,
        Fetcher(config.fetch) as fetcher,
    ):
        scheduler = Scheduler(Pipeline(archive, fetcher))
        scheduler.start()
        try:
            ids = {j for j, _ in scheduler.jobs()}
            assert job_id(config.policies[0]) == "track:A/T" and "track:A/T" in ids
            deadline = time.monotonic() + 180
            while not archive.versions.history("A", "T"):
                assert time.monotonic() < deadline, "the scheduled check never ran"
                time.sleep(0.05)
        finally:
            scheduler.shutdown()
        last_check = archive.state.get("A", "T").last_check
        restarted = Scheduler(Pipeline(archive, fetcher))
        restarted.start(paused=True)
        try:
            (next_run,) = [t for j, t in restarted.jobs() if j == "track:A/T"]
        finally:
            restarted.shutdown()
        phase = spread([("A", "T")], HOUR)[("A", "T")]
        assert next_run == next_slot(phase, HOUR, last_check + HOUR / 2)
        assert next_run >= datetime.now(UTC) + timedelta(minutes=25)
