"""A query's time budget, counted in its own CPU time.

A loaded server shares its cores between many requests, so the wall-clock time of a query says
little about what the query costs. :class:`Budget` counts the CPU time of the thread that runs
the query (``time.thread_time()``): a query over budget is refused as too broad, whatever the
load. A query that is within budget but has waited longer than ``wall`` seconds in all (the
server is overloaded) stops with :class:`IndexBusyError`, which asks the caller to retry.
"""

from __future__ import annotations

import time

from store.index.query import IndexBusyError, QueryTooBroadError

WALL_FACTOR = 4.0
"""Wall-clock seconds a query may take, per second of CPU budget, before it gives up."""


class Budget:
    """CPU seconds a query may use, and wall-clock seconds it may take, from now on."""

    def __init__(self, cpu: float, wall: float | None = None) -> None:
        self.cpu = cpu
        self._cpu_end = time.thread_time() + cpu
        self._wall_end = time.monotonic() + (cpu * WALL_FACTOR if wall is None else wall)

    def restart_cpu(self) -> None:
        """Count CPU time from now on (what came before was not the query's work)."""
        self._cpu_end = time.thread_time() + self.cpu

    def used(self) -> float:
        """CPU seconds used so far."""
        return time.thread_time() - (self._cpu_end - self.cpu)

    def remaining_wall(self) -> float:
        """Wall-clock seconds left (negative once past)."""
        return self._wall_end - time.monotonic()

    def check(self) -> None:
        """Raise if the query used its CPU budget (too broad) or ran out of wall time (busy)."""
        if time.thread_time() > self._cpu_end:
            raise QueryTooBroadError(
                "this query takes too long to answer; add more specific words, use a phrase, "
                "or narrow it with service:, type:, lang: or dates"
            )
        if time.monotonic() > self._wall_end:
            raise IndexBusyError(
                "the server is too busy to answer this query now; try again in a few seconds"
            )
