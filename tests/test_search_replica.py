"""Search in PostgreSQL read from a streaming replica: reads go to the replica, and when the
replica stops during a loop of searches every search still answers (from the primary)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from archive.app import Archive
from archive.config import config_from_mapping
from archive.search import language_resolver, search
from store.git.versions import FIRST_RECORD
from tests.conftest import SEED_POLICIES, seed_text
from tests.services import Services, start_services, stop_services
from tests.support import record_version

pytestmark = pytest.mark.slow

T0 = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)
PG_CTL = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))), None)


@pytest.fixture(scope="module")
def pair() -> Iterator[Services]:
    """A primary and its streaming replica, on two loopback ports."""
    started = start_services(replica=True)
    try:
        yield started
    finally:
        stop_services(started)


def wait_for(condition, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def replica_head(url: str) -> str | None:
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('pa_search.meta')").fetchone() == (None,):
            return None
        row = conn.execute("SELECT value FROM pa_search.meta WHERE key = 'head'").fetchone()
        return row[0] if row else None


def commits(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        return int(row[0]) if row else 0


@pytest.fixture
def archive(pair: Services, tmp_path: Path) -> Iterator[Archive]:
    urls = pair.urls
    config = config_from_mapping(
        {
            "data_dir": str(tmp_path / "data"),
            "search": {
                "engine": "postgresql",
                "url": urls["POSTGRES_URL"],
                "replicas": [urls["POSTGRES_REPLICA_URL"]],
            },
        },
        path=tmp_path / "config.toml",
    )
    with psycopg.connect(urls["POSTGRES_URL"], autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS pa_search CASCADE")  # the last test's index
    with Archive(config, writer=True, create=True) as arch:
        for i, (name, (service, type_, lang)) in enumerate(SEED_POLICIES.items()):
            arch.state.set_meta(f"lang:{service}/{type_}", lang)
            record_version(
                arch, service, type_, seed_text(name), T0 + timedelta(hours=i), FIRST_RECORD
            )
        assert arch.index.sync(arch.versions, language_of=language_resolver(arch)) == 4
        head = arch.versions.head()
        wait_for(lambda: replica_head(urls["POSTGRES_REPLICA_URL"]) == head, "the replica")
        yield arch


def test_searches_read_from_the_replica(archive, pair):
    replica = pair.urls["POSTGRES_REPLICA_URL"]
    before = commits(replica)
    for _ in range(20):
        assert search(archive, "retention 30 days").hits[0].service == "WorkOptima"
    # each search is one read-only transaction on the replica (statistics flush within ~1 s)
    wait_for(lambda: commits(replica) - before >= 20, "the replica's transaction count")
    with psycopg.connect(replica, autocommit=True) as conn:
        (ours,) = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
    assert ours >= 1  # the search's idle connection, kept on the replica


def stop_replica(pair: Services) -> None:
    assert PG_CTL is not None
    command = [str(PG_CTL), "-D", str(pair.folder / "postgres-replica"), "-m", "immediate"]
    command.append("stop")
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    import subprocess

    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_stopping_the_replica_fails_no_search(archive, pair):
    expected = search(archive, "privacy").total
    answered: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                answered.append(search(archive, "privacy").total)
            except BaseException as exc:  # noqa: BLE001 - counted by the test
                failures.append(exc)

    threads = [threading.Thread(target=loop) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(answered) >= 20, "searches before the stop")
        stop_replica(pair)
        after = len(answered)
        wait_for(lambda: len(answered) >= after + 40, "searches after the stop")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:3]
    assert set(answered) == {expected}
    primary = archive.index.servers.primary.url  # type: ignore[attr-defined]
    assert commits(primary) > 0
