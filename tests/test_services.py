"""scripts/services: PostgreSQL (with rum and unaccent, a streaming replica) and Redis on
loopback, started, reported and stopped as a user would."""

from __future__ import annotations

import psycopg
import pytest
import redis

from tests.services import start_services, stop_services

pytestmark = pytest.mark.slow


def test_start_status_stop_with_a_replica() -> None:
    services = start_services(replica=True)
    try:
        assert set(services.urls) == {"POSTGRES_URL", "POSTGRES_REPLICA_URL", "REDIS_URL"}
        with psycopg.connect(services.postgres_url, autocommit=True) as conn:
            have = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
            assert {"rum", "unaccent"} <= have
            conn.execute("CREATE TABLE seen (word text)")
            conn.execute("INSERT INTO seen VALUES ('streamed')")
            conn.execute("SELECT pg_switch_wal()")
        with psycopg.connect(services.urls["POSTGRES_REPLICA_URL"], autocommit=True) as replica:
            assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            for _ in range(100):
                if replica.execute("SELECT to_regclass('seen')").fetchone() != (None,):
                    break
                __import__("time").sleep(0.1)
            assert replica.execute("SELECT word FROM seen").fetchall() == [("streamed",)]
        assert redis.Redis.from_url(services.redis_url).ping()
        status = services.run("status")
        assert status.returncode == 0, status.stderr
        assert "postgresql: running" in status.stdout and "redis: running" in status.stdout
        again = services.run("start", "--replica")  # idempotent: reuses what runs
        assert again.returncode == 0 and "POSTGRES_URL=" in again.stdout
        assert services.run("stop").returncode == 0
        stopped = services.run("status")
        assert stopped.returncode == 1
        assert "postgresql: stopped" in stopped.stdout and "redis: stopped" in stopped.stdout
    finally:
        stop_services(services)


def test_fixtures_give_each_test_its_own_database(postgres_url: str, redis_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone() == (0,)
        assert conn.execute("SELECT unaccent('sécurité')").fetchone() == ("securite",)
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
