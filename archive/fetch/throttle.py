"""Admission control for outbound requests: a global concurrency limit and a per-host delay."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_PRUNE_AT = 1024  # hosts remembered before the expired ones are forgotten


class Throttle:
    """At most ``concurrency`` requests at once, and ``per_host_delay`` seconds between the
    starts of two requests to the same host, across all threads.

    A thread waiting for its host's turn does not hold a concurrency slot, so one slow host
    does not starve the others.
    """

    def __init__(self, concurrency: int, per_host_delay: float) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._limit = concurrency
        self._delay = max(0.0, per_host_delay)
        self._active = 0
        self._next_start: dict[str, float] = {}
        self._cond = threading.Condition()

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Wait until a request to ``host`` may start; hold a concurrency slot meanwhile."""
        with self._cond:
            while True:
                now = time.monotonic()
                ready_at = self._next_start.get(host, 0.0)
                if now >= ready_at and self._active < self._limit:
                    break
                self._cond.wait(ready_at - now if now < ready_at else None)
            self._active += 1
            if self._delay:
                self._next_start[host] = now + self._delay
                if len(self._next_start) > _PRUNE_AT:
                    self._forget_expired(now)
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def _forget_expired(self, now: float) -> None:
        for host in [h for h, t in self._next_start.items() if t <= now]:
            del self._next_start[host]
