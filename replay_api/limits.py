"""Rate limits per client address: token buckets, and the dependency that applies them.

Each named limit (``search``, ``tokens``) is a token bucket per client
address: ``burst`` requests at once, refilled at ``per_minute``. A request
that finds its bucket empty gets a 429 with ``Retry-After`` (whole seconds
until a token is back) and the usual JSON error.

Two stores count the buckets:

* ``MemoryBuckets`` (the default) lives in the API process: exact, free, and
  right for one process; with N processes a client gets N times the limit.
* ``RedisBuckets`` keeps the buckets in Redis (one Lua script per check, the
  clock being Redis's own), so every API process shares them. If Redis
  cannot be reached the request is let through: a limiter that turns a
  Redis outage into an API outage would be worse than a brief lack of limits.

Routes opt in with a dependency::

    @router.post("/spaces/{space_id}/tokens", dependencies=[Depends(RateLimited("tokens"))])

The client address is the ASGI ``client``: behind a reverse proxy, run
uvicorn with ``--forwarded-allow-ips`` so it is the real client's, never a
header the client could forge itself. IPv6 clients are counted per /64, the
block one host or home is usually given.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from spaces.exceptions import Busy, ConfigError
from spaces.names import holder_address
from spaces.settings import Settings

log = logging.getLogger(__name__)

#: The named limits, each with its rule in ``Settings``.
NAMES = ("search", "tokens")

#: While Redis is unreachable, say so at most this often (seconds), not per request.
_WARN_EVERY = 60.0

#: Buckets remembered by one process; the least recently seen go first (a
#: forgotten bucket is a full one, which is what it refills to anyway).
MAX_BUCKETS = 100_000


@dataclass(frozen=True)
class Rule:
    """``burst`` requests at once, then ``per_minute`` sustained; ``per_minute=0`` is no limit."""

    per_minute: int
    burst: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0

    @property
    def capacity(self) -> float:
        return float(max(self.burst, 1))


class BucketStore(Protocol):
    async def take(self, key: str, rule: Rule) -> float:
        """Take one token; 0.0 if there was one, else seconds until there will be."""

    async def close(self) -> None: ...


class MemoryBuckets:
    """Token buckets in this process's memory (thread-safe: sync routes run in a pool)."""

    def __init__(self, *, max_buckets: int = MAX_BUCKETS, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max = max_buckets
        self._clock = clock

    async def take(self, key: str, rule: Rule) -> float:
        return self.take_now(key, rule, self._clock())

    def take_now(self, key: str, rule: Rule, now: float) -> float:
        with self._lock:
            tokens, then = self._buckets.get(key, (rule.capacity, now))
            tokens = min(rule.capacity, tokens + max(0.0, now - then) * rule.per_second)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / rule.per_second
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            return wait

    async def close(self) -> None:
        return None


# KEYS[1]: the bucket; ARGV: tokens per second, capacity. Returns the wait in
# seconds as a string (Redis would truncate a Lua number to an integer).
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return string.format('%.6f', wait)
"""


class RedisBuckets:
    """Token buckets in Redis, shared by every API process; fails open."""

    def __init__(self, redis: Redis, *, prefix: str = "spaces:ratelimit:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._script: Any = redis.register_script(_TAKE)
        self._warned_at = -_WARN_EVERY

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "spaces:ratelimit:") -> RedisBuckets:
        # Short timeouts: a slow Redis must not hold every search up.
        return cls(Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5), prefix=prefix)

    async def take(self, key: str, rule: Rule) -> float:
        try:
            wait = await self._script(keys=[self.prefix + key], args=[rule.per_second, rule.capacity])
        # RuntimeError: a connection made on another event loop (one per
        # TestClient, or after a reload) must not turn into a 500 either.
        except (redis_errors.RedisError, OSError, TimeoutError, RuntimeError) as e:
            if time.monotonic() - self._warned_at >= _WARN_EVERY:
                self._warned_at = time.monotonic()
                log.warning("rate limit store unreachable, letting requests through: %s", e)
            return 0.0
        return float(wait)

    async def close(self) -> None:
        await self.redis.aclose()


class Limiter:
    """Named rules over one bucket store."""

    def __init__(self, rules: dict[str, Rule], store: BucketStore) -> None:
        self.rules = rules
        self.store = store

    @classmethod
    def from_settings(cls, settings: Settings) -> Limiter:
        rules = {
            "search": Rule(settings.search_rate_limit, settings.search_rate_burst),
            "tokens": Rule(settings.token_rate_limit, settings.token_rate_burst),
        }
        store: BucketStore
        if settings.rate_limit_store == "memory":
            store = MemoryBuckets()
        elif settings.rate_limit_store == "redis":
            # Under the queue's name, so deployments sharing a Redis (and test
            # runs) keep apart as their queues already do.
            store = RedisBuckets.from_url(settings.redis_url, prefix=f"{settings.queue_name}:ratelimit:")
        else:
            raise ConfigError(f"SPACES_RATE_LIMIT_STORE must be memory or redis, got {settings.rate_limit_store!r}")
        return cls(rules, store)

    async def check(self, name: str, client: str) -> None:
        """Count one request; raise a 429 with ``Retry-After`` if over the limit."""
        rule = self.rules[name]
        if rule.per_minute <= 0:
            return
        wait = await self.store.take(f"{name}:{client}", rule)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise Busy(f"too many {name} requests from your address; retry in {retry} s", retry_after=retry)


def client_address(request: Request) -> str:
    """The key a client is counted under: its address, IPv6 by /64."""
    return holder_address(request.client.host if request.client else "")


#: For a route's ``responses=``, so the OpenAPI page shows the 429.
RESPONSES: dict[int | str, dict[str, Any]] = {
    429: {"description": "Too many requests from this address; retry after ``Retry-After`` seconds"}
}


class RateLimited:
    """A FastAPI dependency counting each request against the named limit.

    ``only_with`` names a query parameter: the request counts only when that
    parameter is present and not empty (the home page searches only with ``?q=``).
    """

    def __init__(self, name: str, *, only_with: str | None = None) -> None:
        if name not in NAMES:
            raise ValueError(f"unknown rate limit {name!r}; known: {', '.join(NAMES)}")
        self.name = name
        self.only_with = only_with

    async def __call__(self, request: Request) -> None:
        if self.only_with is not None and not request.query_params.get(self.only_with):
            return
        limiter: Limiter = request.app.state.limiter
        await limiter.check(self.name, client_address(request))
