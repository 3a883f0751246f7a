"""Per-host politeness across every worker of a fetch queue: each host's next allowed start
kept in Redis and taken by an atomic Lua script on Redis's own clock (one clock for all
machines, so skewed worker clocks cannot shorten the delay)."""

from __future__ import annotations

import redis

from archive.errors import FetchError
from archive.fetch.throttle import Throttle

TAKE_TURN = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ready = tonumber(redis.call('GET', KEYS[1]) or '0')
if now_ms < ready then
  return ready - now_ms
end
local delay = tonumber(ARGV[1])
redis.call('SET', KEYS[1], now_ms + delay, 'PX', delay)
return 0
"""
"""KEYS[1]: the host's key; ARGV[1]: the delay in ms. Returns 0 (turn taken) or ms to wait."""


class SharedThrottle(Throttle):
    """A :class:`Throttle` whose per-host turns are shared through Redis by all processes
    using ``namespace``; the concurrency limit stays this process's own."""

    def __init__(
        self,
        client: redis.Redis,
        concurrency: int,
        per_host_delay: float,
        *,
        namespace: str = "policy-archive",
    ) -> None:
        super().__init__(concurrency, per_host_delay)
        self._prefix = f"{namespace}:host-turn:"
        self._delay_ms = max(1, round(self.per_host_delay * 1000))
        self._script = client.register_script(TAKE_TURN)

    def take_turn(self, host: str) -> float:
        try:
            wait_ms = self._script(keys=[self._prefix + host.lower()], args=[self._delay_ms])
        except redis.RedisError as exc:
            raise FetchError(
                f"the shared per-host limiter in Redis is unreachable ({exc}); "
                "the fetch is retried when Redis answers again",
                transient=True,
            ) from None
        return int(wait_ms) / 1000
