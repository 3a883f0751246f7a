"""The one LRU (store/cache.py) and the diff cache built on it: bounded in items and bytes."""

from __future__ import annotations

import sys

from archive.diff import DiffCache, diff_size, diff_texts
from store.cache import LRU


def test_the_lru_keeps_the_most_recently_used_and_counts_hits() -> None:
    cache: LRU[str, str] = LRU(maxsize=2)
    calls: list[str] = []

    def compute(key: str) -> str:
        calls.append(key)
        return key.upper()

    assert cache.get("a", lambda: compute("a")) == "A"
    assert cache.get("b", lambda: compute("b")) == "B"
    assert cache.get("a", lambda: compute("a")) == "A"  # a hit: "a" is now the newest
    cache.get("c", lambda: compute("c"))  # evicts "b", the least recently used
    assert cache.keys() == ["a", "c"]
    assert calls == ["a", "b", "c"]
    assert (cache.hits, cache.misses, len(cache)) == (1, 3, 2)


def test_the_lru_measures_values_with_the_size_it_is_given() -> None:
    cache: LRU[int, list[str]] = LRU(maxsize=100, max_bytes=10, size=len)
    for n in range(5):
        cache.get(n, lambda: ["x"] * 4)
    assert cache.keys() == [3, 4] and cache.bytes == 8
    assert cache.get(9, lambda: ["x"] * 11) == ["x"] * 11  # larger than the cache: not kept
    assert cache.keys() == [3, 4]


def test_diffs_are_sized_by_the_text_they_hold() -> None:
    small = diff_texts("One.\n\nTwo.", "One.\n\nThree.")
    big = diff_texts("Intro.", "Intro.\n\n" + "word " * 20_000)
    assert diff_size(big) > sys.getsizeof("word " * 20_000) > diff_size(small)
    room = diff_size(big) * 2 + diff_size(small)
    cache = DiffCache(maxsize=100, max_bytes=room)
    for key in ("a", "b", "c"):
        cache.get(key, lambda: big)
    cache.get("small", lambda: small)
    assert cache.keys() == ["b", "c", "small"]
    assert cache.bytes <= room
