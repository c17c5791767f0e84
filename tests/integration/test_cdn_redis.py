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
    OriginError,
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


def test_large_bodies_stream_into_redis_chunks_and_failures_leave_nothing() -> None:
    import hashlib

    from commercekit.cdn import HttpOrigin
    from tests.cdn._loopback import StreamingServer, pattern_bytes

    size = 6 * 1024 * 1024 + 123

    async def main(origin_url: str) -> None:
        from redis.asyncio import Redis

        namespace = f"test:{uuid.uuid4().hex}"
        client = Redis.from_url("redis://127.0.0.1:6379/15")

        def edge(name: str) -> EdgeCache:
            store = RedisStore(
                Redis.from_url("redis://127.0.0.1:6379/15"),
                namespace=namespace,
                max_entry_bytes=32 * 1024 * 1024,
                chunk_bytes=1024 * 1024,
            )
            return EdgeCache(HttpOrigin(origin_url), store, name=name)

        async def keys() -> list[bytes]:
            return [k async for k in client.scan_iter(match=f"{namespace}:*")]

        try:
            first, second = edge("app0"), edge("app1")
            # an origin failure mid-body: no manifest, no chunk left behind
            broken = await first.get(f"http://shop.test/{size}?fail={3 * 1024 * 1024}")
            with pytest.raises(OriginError):
                await broken.read()
            await asyncio.sleep(0.05)
            assert await keys() == []
            # coalesced waiters read one streamed body; it lands in Redis as chunks
            url = f"http://shop.test/{size}"
            responses = await asyncio.gather(*(first.get(url) for _ in range(3)))
            bodies = await asyncio.gather(*(r.read() for r in responses))
            assert len({hashlib.sha256(b).hexdigest() for b in bodies}) == 1
            assert bodies[0][:1000] == pattern_bytes(0, 999)
            await asyncio.sleep(0.05)
            chunk_keys = [k for k in await keys() if b":c:" in k]
            assert len(chunk_keys) == 7
            hit = await second.get(url)
            assert hit.outcome is CacheOutcome.HIT
            assert hit.stream is not None  # streamed from the chunk keys
            assert await hit.read() == bodies[0]
            part = await second.get(url, {"range": "bytes=2097150-2097153"})
            assert part.status == 206
            assert await part.read() == pattern_bytes(2097150, 2097153)
            for e in (first, second):
                await e.aclose()
        finally:
            found = await keys()
            if found:
                await client.delete(*found)
            await client.aclose()

    with StreamingServer() as origin:
        asyncio.run(main(origin.url))
        assert origin.requests == 2
