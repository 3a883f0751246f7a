"""Admission control for outbound requests: a global concurrency limit and a per-host delay.

:class:`Throttle` keeps each host's next allowed start in this process; a subclass may keep it
elsewhere (``archive.queue.limiter.SharedThrottle`` keeps it in Redis, so every worker of a
fetch queue waits its turn) by overriding :meth:`Throttle.take_turn`. The fetcher takes either.
"""

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

    @property
    def per_host_delay(self) -> float:
        return self._delay

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Wait until a request to ``host`` may start; hold a concurrency slot meanwhile."""
        with self._cond:
            while True:
                wait: float | None = None  # None: until a slot is freed
                if self._active < self._limit:
                    wait = self.take_turn(host) if self._delay else 0.0
                    if wait <= 0:
                        break
                self._cond.wait(wait)
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def take_turn(self, host: str) -> float:
        """Take ``host``'s turn now if it has come (0.0), else the seconds until it comes.

        Called with the lock held, only when a concurrency slot is free and the delay is set.
        """
        now = time.monotonic()
        ready_at = self._next_start.get(host, 0.0)
        if now < ready_at:
            return ready_at - now
        self._next_start[host] = now + self._delay
        if len(self._next_start) > _PRUNE_AT:
            self._forget_expired(now)
        return 0.0

    def _forget_expired(self, now: float) -> None:
        for host in [h for h, t in self._next_start.items() if t <= now]:
            del self._next_start[host]
