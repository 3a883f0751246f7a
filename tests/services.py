"""Real PostgreSQL and Redis for the tests, started with ``scripts/services`` on free loopback
ports in a folder of their own, once per test session.

``postgres_url`` gives each test a database of its own (created from template1, which carries
the rum and unaccent extensions; dropped afterwards); ``redis_url`` a flushed Redis database.
Where the servers are not installed the tests that need them are skipped, except under CI
(``CI`` set), where that is a failure: .ci/run installs them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "services"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Services:
    """Servers started by ``scripts/services`` in ``folder``: their URLs and environment."""

    folder: Path
    env: dict[str, str]
    urls: dict[str, str]

    @property
    def postgres_url(self) -> str:
        return self.urls["POSTGRES_URL"]

    @property
    def redis_url(self) -> str:
        return self.urls["REDIS_URL"]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=300
        )


def start_services(*, replica: bool = False) -> Services:
    """Start PostgreSQL (and a streaming replica) and Redis in a new folder on free ports."""
    missing = [
        what
        for what, found in (
            ("redis-server", shutil.which("redis-server")),
            ("PostgreSQL's server", any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))),
        )
        if not found
    ]
    if missing:
        reason = f"{' and '.join(missing)} not installed (apt-get install postgresql-15 ...)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="pa-services-"))
    folder.chmod(0o755)  # PostgreSQL runs as the postgres user when we are root
    env = {
        **os.environ,
        "SERVICES_DIR": str(folder),
        "PG_PORT": str(free_port()),
        "PG_REPLICA_PORT": str(free_port()),
        "REDIS_PORT": str(free_port()),
    }
    services = Services(folder, env, {})
    done = services.run("start", *(["--replica"] if replica else []))
    if done.returncode != 0:
        stop_services(services)
        pytest.fail(f"scripts/services start failed: {done.stderr.strip() or done.stdout}")
    urls = dict(
        line.split("=", 1) for line in done.stdout.splitlines() if "=" in line and "://" in line
    )
    return Services(folder, env, urls)


def stop_services(services: Services) -> None:
    services.run("stop")
    shutil.rmtree(services.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """PostgreSQL and Redis for the whole session."""
    started = start_services()
    yield started
    stop_services(started)


def admin_sql(url: str, sql: str) -> None:
    """Run one statement (outside a transaction) on the server of ``url``."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


@contextmanager
def new_database(services: Services) -> Iterator[str]:
    """The URL of a new, empty database (with rum and unaccent), dropped on leaving; for
    fixtures of a wider scope than :func:`postgres_url`'s."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin_sql(services.postgres_url, f'CREATE DATABASE "{name}" TEMPLATE template1')
    try:
        yield f"{services.postgres_url.rsplit('/', 1)[0]}/{name}"
    finally:
        admin_sql(services.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(services: Services) -> Iterator[str]:
    """A new, empty database of this test's own (with rum and unaccent), dropped after it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin_sql(services.postgres_url, f'CREATE DATABASE "{name}" TEMPLATE template1')
    base = services.postgres_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    admin_sql(services.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url(services: Services) -> str:
    """Redis database 0 of the session's server, emptied for this test."""
    import redis

    client = redis.Redis.from_url(services.redis_url)
    client.flushdb()
    client.close()
    return services.redis_url
