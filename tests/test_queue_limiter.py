"""The per-host delay held across processes: two fetchers with their own SharedThrottle (as
two workers of a fetch queue have) against one real Redis and one loopback site."""

from __future__ import annotations

import itertools
import threading

import redis

from archive.config import config_from_mapping
from archive.fetch import Fetcher
from archive.queue.limiter import SharedThrottle
from tests.fixture_server import FixtureServer

DELAY = 0.2


def test_two_fetchers_keep_the_per_host_delay_between_them(
    redis_url: str, fixture_server: FixtureServer, tmp_path
) -> None:
    urls = [fixture_server.set(f"/p{i}", f"page {i}") for i in range(8)]
    settings = config_from_mapping(
        {
            "data_dir": str(tmp_path),
            "fetch": {"allow_private_addresses": True, "per_host_delay": DELAY, "timeout": 5.0},
        }
    ).fetch
    clients = [redis.Redis.from_url(redis_url) for _ in range(2)]
    fetchers = [
        Fetcher(settings, throttle=SharedThrottle(c, concurrency=4, per_host_delay=DELAY))
        for c in clients
    ]
    threads = [
        threading.Thread(target=fetchers[i % 2].fetch, args=(url,)) for i, url in enumerate(urls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    starts = sorted(r.time for r in fixture_server.requests)
    assert len(starts) == len(urls)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= DELAY * 0.9, gaps  # client-side latency may shave a few ms
    for fetcher, client in zip(fetchers, clients, strict=True):
        fetcher.close()
        client.close()


def test_a_host_waiting_its_turn_leaves_other_hosts_free(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    first, second = (SharedThrottle(client, 1, 5.0) for _ in range(2))
    assert first.take_turn("a.example") == 0.0
    assert second.take_turn("a.example") > 4.0  # the other worker's turn holds
    assert second.take_turn("b.example") == 0.0
    client.close()
