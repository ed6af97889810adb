"""Per-client burst limits on the exchange: a token bucket per API client, answered with 429 and Retry-After.

Grants carry the daily quota (catalog.grant_check); this is the other half of issue 7's rule: one client
may not flood the exchange, whatever its grants. Each client's bucket holds ``burst`` calls and refills
at ``rate`` calls a second. Embedded mode keeps the buckets in the process (there is one); distributed
mode keeps them in Redis so every API process draws from the same bucket, with the refill-and-take done
by one Lua script so concurrent processes cannot both take the last token.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

from hub.errors import DomainError


class ClientRateLimited(DomainError):
    status = 429
    code = "client_rate_limited"
    title = "This API client is calling the exchange too fast"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"slow down: retry after {retry_after} s", retry_after=retry_after)
        self.headers["Retry-After"] = str(retry_after)


class Limiter(Protocol):
    blocking: bool  # a check waits on the network: event-loop callers run it on a worker thread

    def take(self, client_id: str) -> float:
        """Take one call; 0.0 if allowed, else the seconds until one is available (nothing taken)."""
        ...


class MemoryLimiter:
    """Token buckets in this process (embedded mode)."""

    blocking = False

    def __init__(self, burst: int, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.rate, self.clock = burst, rate, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, client_id: str) -> float:
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(client_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[client_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client_id] = (tokens, now)
            return (1.0 - tokens) / self.rate


# KEYS[1] bucket; ARGV burst, rate, now (s); returns the wait in ms (0 = taken). Redis runs a script
# atomically, so the read-refill-take cannot interleave across API processes.
_TAKE = """
local burst, rate, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
"""


class RedisLimiter:
    """Token buckets in Redis (distributed mode: every API process shares them)."""

    blocking = True

    def __init__(self, url: str, burst: int, rate: float, *, prefix: str = "licence-hub:rate:") -> None:
        self.burst, self.rate, self.prefix = burst, rate, prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._take = self._redis.register_script(_TAKE)

    def take(self, client_id: str) -> float:
        try:
            seconds, micros = self._redis.time()  # one clock for every process: the Redis server's
            now = seconds + micros / 1_000_000
            wait_ms = int(self._take(keys=[self.prefix + client_id], args=[self.burst, self.rate, now]))
        except redis.RedisError:
            return 0.0  # fail open: the daily quotas and the audit log still hold; an outage must not stop cases
        return wait_ms / 1000


def check(limiter: Limiter, client_id: str) -> None:
    wait = limiter.take(client_id)
    if wait > 0:
        raise ClientRateLimited(max(1, math.ceil(wait)))
