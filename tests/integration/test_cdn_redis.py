"""Two edges (two app servers) sharing one real Redis tier."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest

from commercekit.cdn import (
    CacheOutcome,
    EdgeCache,
    Headers,
    ManualClock,
    MockOrigin,
    PurgeSelector,
    RedisStore,
    Request,
    Response,
)
from tests.conftest import missing_service

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _redis() -> None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        missing_service("Redis is not reachable on 127.0.0.1:6379")


def test_edges_share_responses_and_purges_through_redis() -> None:
    async def main() -> None:
        from redis.asyncio import Redis

        namespace = f"test:{uuid.uuid4().hex}"
        clock = ManualClock()
        version = [1]

        def handler(request: Request) -> Response:
            headers = {"cache-control": "max-age=60, stale-if-error=60", "surrogate-key": "p1"}
            return Response(200, Headers(headers), f"v{version[0]}".encode())

        origin = MockOrigin(handler)
        edges = [
            EdgeCache(
                origin,
                RedisStore(
                    Redis.from_url("redis://127.0.0.1:6379/15"), namespace=namespace, clock=clock
                ),
                clock=clock,
                name=f"app{i}",
            )
            for i in range(2)
        ]
        url = "http://shop.test/p/1.jpg"
        assert (await edges[0].get(url)).outcome is CacheOutcome.MISS
        hit = await edges[1].get(url)
        assert hit.outcome is CacheOutcome.HIT
        assert hit.body == b"v1"
        assert len(origin.requests) == 1
        version[0] = 2
        await edges[0].purge(PurgeSelector.tags("p1"))
        assert (await edges[1].get(url)).body == b"v2"
        await edges[1].purge(PurgeSelector.urls(url), soft=True)
        origin_calls = len(origin.requests)
        clock.advance(1)
        assert (await edges[0].get(url)).body == b"v2"
        assert len(origin.requests) == origin_calls + 1  # soft-purged: stale, so refetched
        client = Redis.from_url("redis://127.0.0.1:6379/15")
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        for edge in edges:
            await edge.aclose()

    asyncio.run(main())


def test_redis_down_degrades_to_the_origin() -> None:
    async def main() -> None:
        from redis.asyncio import Redis

        origin = MockOrigin(lambda r: Response(200, Headers({"cache-control": "max-age=60"}), b"x"))
        store = RedisStore(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2))
        edge = EdgeCache(origin, store)
        assert (await edge.get("http://shop.test/a")).body == b"x"
        assert (await edge.get("http://shop.test/a")).body == b"x"
        assert len(origin.requests) == 2
        await edge.aclose()

    asyncio.run(main())
