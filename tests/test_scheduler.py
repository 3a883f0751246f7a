"""The scheduler: explicit job ids, next run derived from state, backoff, a real run."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from archive.app import Archive
from archive.fetch import Fetcher
from archive.pipeline import Pipeline
from archive.scheduler import Scheduler, backoff, first_run, job_id
from store.state import PolicyState
from tests.conftest import seed_text
from tests.pages import policy_page

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_first_run_comes_from_the_last_check():
    never = PolicyState("A", "T")
    assert NOW <= first_run(never, 6 * HOUR, NOW, timedelta(minutes=2)) <= NOW + 2 * HOUR / 60
    recent = PolicyState("A", "T", last_check=NOW - HOUR)
    assert first_run(recent, 6 * HOUR, NOW, timedelta(0)) == NOW + 5 * HOUR
    overdue = PolicyState("A", "T", last_check=NOW - 10 * HOUR)
    assert first_run(overdue, 6 * HOUR, NOW, timedelta(0)) == NOW
    failing = PolicyState(
        "A", "T", last_check=NOW - HOUR, failures=2, last_error="x", last_error_transient=True
    )
    assert first_run(failing, 16 * HOUR, NOW, timedelta(0)) == NOW + HOUR


def test_backoff_doubles_and_is_capped():
    base = timedelta(minutes=10)
    assert base / 2 <= backoff(1, base, 6 * HOUR) <= base
    assert 4 * base / 2 <= backoff(3, base, 6 * HOUR) <= 4 * base
    assert backoff(30, base, 6 * HOUR) <= 6 * HOUR


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
        Archive.open(config, writer=True, create=True) as archive,
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
        restarted = Scheduler(Pipeline(archive, fetcher))
        restarted.start(paused=True)
        try:
            (next_run,) = [t for j, t in restarted.jobs() if j == "track:A/T"]
        finally:
            restarted.shutdown()
        assert next_run >= datetime.now(UTC) + timedelta(minutes=55)
