"""Rate limits shared by every API process through Redis (the real server, keys of our own)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from replay_api.app import create_app
from replay_api.limits import RedisBuckets, Rule
from spaces.settings import Settings


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test-ratelimit-{uuid.uuid4().hex[:12]}:"
    yield prefix
    redis = Redis.from_url(redis_url)
    keys = list(redis.scan_iter(match=f"{prefix}*"))
    if keys:
        redis.delete(*keys)
    redis.close()


def test_processes_share_one_bucket(redis_url: str, prefix: str) -> None:
    rule = Rule(per_minute=60, burst=3)

    async def run() -> list[float]:
        # Two stores with their own connections: two API processes.
        a, b = RedisBuckets.from_url(redis_url, prefix=prefix), RedisBuckets.from_url(redis_url, prefix=prefix)
        try:
            return [await s.take("search:203.0.113.7", rule) for s in (a, b, a, b)]
        finally:
            await a.close()
            await b.close()

    waits = asyncio.run(run())
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.9 < waits[3] <= 1.0
    redis = Redis.from_url(redis_url)
    # Idle buckets expire on their own: Redis never fills up with addresses.
    assert 0 < redis.pttl(f"{prefix}search:203.0.113.7") <= 4000
    redis.close()


def test_app_limits_through_redis(settings: Settings, redis_url: str) -> None:
    app = create_app(
        replace(settings, rate_limit_store="redis", redis_url=redis_url, search_rate_limit=60, search_rate_burst=2)
    )
    try:
        with TestClient(app) as client:
            statuses = [client.get("/search", params={"q": "queen"}).status_code for _ in range(3)]
            assert statuses == [200, 200, 429]
        redis = Redis.from_url(redis_url)
        assert redis.exists(f"{settings.queue_name}:ratelimit:search:testclient")
        redis.close()
    finally:
        Redis.from_url(redis_url).delete(f"{settings.queue_name}:ratelimit:search:testclient")


def test_redis_down_fails_open(settings: Settings) -> None:
    """An unreachable Redis lets requests through rather than failing them."""
    app = create_app(
        replace(settings, rate_limit_store="redis", redis_url="redis://127.0.0.1:1/0", search_rate_burst=1)
    )
    with TestClient(app) as client:
        assert [client.get("/search", params={"q": "queen"}).status_code for _ in range(3)] == [200, 200, 200]
