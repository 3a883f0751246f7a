"""The one least-recently-used cache: thread-safe, bounded in items and in bytes.

For values that never change once computed (a diff between two commits, the rendered HTML of a
version), shared by the threads of one process. It lives in the lowest layer so that the store,
the archive and the web can all use it.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def size_of(value: Any) -> int:
    """Roughly the bytes a cached value holds: its text for strings, else its own size."""
    if isinstance(value, str | bytes):
        return sys.getsizeof(value)
    return sys.getsizeof(value) + 16


class LRU(Generic[K, V]):
    """A thread-safe least-recently-used cache, bounded by the number of items (``maxsize``)
    and by the bytes its values hold (``max_bytes``, each value measured by ``size``).

    ``compute`` runs outside the lock: two threads missing the same key may both compute it,
    and the last one stored wins (harmless for values that never change).
    """

    def __init__(
        self,
        maxsize: int,
        max_bytes: int | None = None,
        *,
        size: Callable[[V], int] = size_of,
    ) -> None:
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.size = size
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, compute: Callable[[], V]) -> V:
        """The cached value for ``key``, computing and storing it if absent (a value larger
        than ``max_bytes`` is returned but not kept)."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return found[0]
            self.misses += 1
        value = compute()
        size = self.size(value)
        if self.max_bytes is not None and size > self.max_bytes:
            return value
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._items[key] = (value, size)
            self.bytes += size
            while len(self._items) > self.maxsize or (
                self.max_bytes is not None and self.bytes > self.max_bytes
            ):
                self.bytes -= self._items.popitem(last=False)[1][1]
        return value

    def keys(self) -> list[K]:
        """The keys kept, least recently used first."""
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        return len(self._items)
