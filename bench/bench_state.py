"""State put/get per second on SQLite and on PostgreSQL (one thread, one policy row each).

Run: ``.venv/bin/python bench/bench_state.py [postgresql://…]`` (without a URL, only SQLite;
``scripts/services start`` prints one). The PostgreSQL run uses a fresh database it drops after.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from store.state import PolicyState, State

N = 2000


def rate(state: State) -> tuple[float, float]:
    now = datetime.now(UTC)
    started = time.perf_counter()
    for i in range(N):
        state.put(PolicyState(f"Service {i}", "Privacy Policy", last_check=now, failures=i % 3))
    puts = N / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(N):
        assert state.get(f"Service {i}", "Privacy Policy").failures == i % 3
    return puts, N / (time.perf_counter() - started)


def main(url: str | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        state = State(Path(folder) / "state.sqlite")
        print("sqlite      put/s {:8.0f}   get/s {:8.0f}".format(*rate(state)))
        state.close()
    if not url:
        return
    name = f"bench_state_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        state = State(Path("unused"), f"{url.rsplit('/', 1)[0]}/{name}")
        print("postgresql  put/s {:8.0f}   get/s {:8.0f}".format(*rate(state)))
        state.close()
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
