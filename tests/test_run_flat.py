"""`run` stays flat: index updates in batches (by count, by time, at shutdown), loose objects
packed before git's threshold, `git gc` on a schedule kept in state across restarts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import Config
from archive.fetch import Fetcher
from archive.tracking.pipeline import Pipeline
from archive.tracking.scheduler import GC_META, Scheduler, Upkeep
from tests.conftest import seed_text
from tests.fixture_server import FixtureServer
from tests.pages import policy_page

TEXT = seed_text("workoptima-privacy-policy.txt")
T0 = datetime(2026, 3, 1, 4, tzinfo=UTC)


def site(server: FixtureServer, n: int) -> list[dict[str, Any]]:
    policies = []
    for i in range(n):
        url = server.set(f"/p{i}", policy_page(f"Service {i}", f"{TEXT}\nService number {i}."))
        policies.append({"service": f"Service {i}", "type": "Terms", "url": url, "select": "main"})
    return policies


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def tracked(make_config, fixture_server) -> Iterator[Callable[..., tuple[Archive, Pipeline]]]:
    """Open an archive of n policies with a deferring pipeline: (archive, pipeline)."""
    opened: list[Any] = []

    def factory(n: int, **schedule: Any) -> tuple[Archive, Pipeline]:
        config: Config = make_config(site(fixture_server, n), schedule=schedule)
        archive = Archive.open(config, writer=True, listeners=LISTENERS, create=True)
        fetcher = Fetcher(config.fetch)
        opened.extend([fetcher, archive])
        pipeline = Pipeline(archive, fetcher)
        pipeline.defer_index_updates()
        return archive, pipeline

    yield factory
    for thing in opened:
        thing.close()


def indexed(archive: Archive) -> bool:
    return archive.index.indexed_head() == archive.versions.head()


def track(upkeep: Upkeep, pipeline: Pipeline, policies: Any) -> None:
    for policy in policies:
        result = pipeline.track(policy)
        assert result.recorded, result
        upkeep.note(result)


def test_the_index_is_updated_once_a_batch_is_full(tracked):
    archive, pipeline = tracked(3, index_batch_size=3, index_batch_seconds=3600)
    upkeep = Upkeep(pipeline, period=3600)
    upkeep.start()
    try:
        policies = archive.config.policies
        track(upkeep, pipeline, policies[:2])
        assert pipeline.pending_index_updates == 2
        assert upkeep.flushes == 0 and not indexed(archive)  # not full, not an hour old
        track(upkeep, pipeline, policies[2:])
        wait_until(lambda: upkeep.flushes == 1, "the full batch to be indexed")
        assert indexed(archive) and pipeline.pending_index_updates == 0
    finally:
        upkeep.stop()
    assert upkeep.flushes == 1  # nothing left at shutdown: no second update


def test_a_change_waits_at_most_index_batch_seconds(tracked):
    archive, pipeline = tracked(1, index_batch_size=1000, index_batch_seconds=1)
    upkeep = Upkeep(pipeline, period=3600)
    upkeep.start()
    try:
        started = time.monotonic()
        track(upkeep, pipeline, archive.config.policies)
        wait_until(lambda: indexed(archive), "the change to reach the index", timeout=30)
        assert time.monotonic() - started >= 1.0 and upkeep.flushes == 1
    finally:
        upkeep.stop()


def test_shutdown_indexes_what_is_pending(tracked):
    archive, pipeline = tracked(2, index_batch_size=1000, index_batch_seconds=3600)
    upkeep = Upkeep(pipeline, period=3600)
    upkeep.start()
    track(upkeep, pipeline, archive.config.policies)
    assert not indexed(archive)
    upkeep.stop()
    assert indexed(archive) and pipeline.pending_index_updates == 0


def test_gc_runs_on_the_schedule_kept_in_state_whatever_the_restarts(tracked):
    archive, pipeline = tracked(3, gc_interval="1d")
    for policy in archive.config.policies:
        assert pipeline.track(policy).recorded
    repos = Upkeep(pipeline).repositories
    loose = {name: repo.count_loose_objects() for name, repo in repos.items()}
    assert all(n > 0 for n in loose.values()), loose
    assert Upkeep(pipeline).pack_and_gc(T0) == []  # a new archive: the schedule starts
    assert archive.state.get_meta(GC_META + "versions") == T0.isoformat()
    # restarted every 20 hours: each process is younger than a day, the schedule is not
    assert Upkeep(pipeline).pack_and_gc(T0 + timedelta(hours=20)) == []
    done = Upkeep(pipeline).pack_and_gc(T0 + timedelta(hours=24))
    assert done == ["gc versions", "gc snapshots"]
    assert all(repo.count_loose_objects() == 0 for repo in repos.values())
    assert archive.state.get_meta(GC_META + "snapshots") == (T0 + timedelta(days=1)).isoformat()
    history = archive.versions.history("Service 1", "Terms")
    assert "Service number 1." in archive.versions.text("Service 1", "Terms", history[0].id)


def test_loose_objects_are_packed_past_the_threshold(tracked):
    archive, pipeline = tracked(2)
    upkeep = Upkeep(pipeline, pack_threshold=5)
    assert upkeep.pack_and_gc(T0) == []  # nothing written yet
    for policy in archive.config.policies:
        assert pipeline.track(policy).recorded
    assert upkeep.pack_and_gc(T0) == ["pack versions", "pack snapshots"]
    assert all(repo.count_loose_objects() == 0 for repo in upkeep.repositories.values())
    assert archive.versions.current_text("Service 0", "Terms").endswith("Service number 0.\n")


def test_run_batches_the_index_and_indexes_everything_by_shutdown(make_config, fixture_server):
    config = make_config(
        site(fixture_server, 6),
        schedule={"index_batch_size": 4, "index_batch_seconds": 3600, "interval": "1h"},
    )
    with (
        Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive,
        Fetcher(config.fetch) as fetcher,
    ):
        scheduler = Scheduler(Pipeline(archive, fetcher))
        scheduler.start()
        try:
            wait_until(lambda: len(archive.versions.policies()) == 6, "the first round")
            wait_until(lambda: scheduler.upkeep.flushes >= 1, "a full batch to be indexed")
        finally:
            scheduler.shutdown()
        assert indexed(archive)
        assert scheduler.upkeep.flushes <= 2  # one per batch of 4 and one at shutdown at most
        assert archive.state.get_meta(GC_META + "versions") is not None  # upkeep ran at start
