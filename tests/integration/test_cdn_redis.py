"""Two edges (two app servers) sharing one real Redis tier."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from commercekit.cdn import (
    CacheOutcome,
    EdgeCache,
    Headers,
    ManualClock,
    MemoryStore,
    MockOrigin,
    OriginError,
    PurgeSelector,
    RedisStore,
    Request,
    Response,
    TieredStore,
)
from tests.conftest import missing_service
from tests.integration._servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_redis")]


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
                    Redis.from_url("redis://127.0.0.1:6379/15"),
                    namespace=namespace,
                    clock=clock,
                    timeout_s=10.0,
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
                timeout_s=10.0,
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


# -- a Redis tier that freezes, then dies -------------------------------------------------


class _OwnRedis:
    """A redis-server of our own on a free loopback port, in a temp folder (safe to SIGSTOP)."""

    def __init__(self, folder: str) -> None:
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            missing_service("redis-server is not installed")
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                str(binary),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                folder,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.process.kill()
                    raise
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()


FREEZE_S = float(os.environ.get("COMMERCEKIT_REDIS_FREEZE_S", "2"))
"""How long Redis stays frozen (the benchmark figure in docs/cdn.md uses 15)."""


def freeze_then_kill(folder: str, freeze_s: float, dead_s: float) -> dict[str, float]:
    """Run 50 URLs of max-age=2 through a tiered edge while its Redis freezes, then dies.

    Returns the worst ``get`` in seconds, the store deadline, and the most origin
    fetches one URL had within one deadline window while the breaker was open.
    """
    server = _OwnRedis(folder)
    deadline_s = 0.2
    fetched: dict[str, list[float]] = {}

    def handler(request: Request) -> Response:
        fetched.setdefault(request.url, []).append(time.monotonic())
        # max-age=2: the Date the edge adds is in whole seconds, so up to 1 s of it is age
        return Response(200, Headers({"cache-control": "max-age=2"}), b"x" * 512)

    async def main() -> dict[str, float]:
        from redis.asyncio import Redis

        far = RedisStore(
            Redis.from_url(server.url),
            namespace=f"test:{uuid.uuid4().hex}",
            timeout_s=deadline_s,
            breaker_failures=3,
            breaker_reset_s=1.0,
        )
        edge = EdgeCache(MockOrigin(handler), TieredStore(MemoryStore(4 * 2**20), far))
        urls = [f"http://shop.test/img/{i}.jpg" for i in range(50)]
        for url in urls:
            await edge.get(url)
        worst = 0.0
        open_windows: list[tuple[float, float]] = []

        async def client(until: float) -> None:
            nonlocal worst
            i = 0
            while time.monotonic() < until:
                started = time.monotonic()
                response = await edge.get(urls[i % len(urls)])
                assert response.status == 200
                worst = max(worst, time.monotonic() - started)
                if far.breaker.is_open:
                    open_windows.append((started, time.monotonic()))
                i += 7
                await asyncio.sleep(0.001)

        server.freeze()
        await asyncio.gather(*(client(time.monotonic() + freeze_s) for _ in range(8)))
        server.kill()
        await asyncio.gather(*(client(time.monotonic() + dead_s) for _ in range(8)))
        await edge.aclose()
        # origin fetches per URL within any one deadline window while the breaker was open
        first_open = min((s for s, _ in open_windows), default=float("inf"))
        most = 0
        for times in fetched.values():
            during = [t for t in times if t >= first_open]
            for j, t in enumerate(during):
                most = max(most, sum(1 for u in during[j:] if u - t < deadline_s))
        return {"worst_get_s": worst, "deadline_s": deadline_s, "most_per_window": most}

    try:
        return asyncio.run(main())
    finally:
        server.close()


def test_frozen_then_dead_redis_never_blocks_a_get_past_the_deadline(tmp_path: Path) -> None:
    found = freeze_then_kill(str(tmp_path), FREEZE_S, 1.0)
    print(f"worst get with Redis frozen {FREEZE_S} s then killed: {found}")
    # the deadline, plus what a loaded 2-core machine may add to any timer's wake-up
    assert found["worst_get_s"] <= found["deadline_s"] + 0.3
    assert found["most_per_window"] <= 1


def test_redis_keeps_a_bounded_number_of_variants_per_url() -> None:
    async def main() -> None:
        from redis.asyncio import Redis

        namespace = f"test:{uuid.uuid4().hex}"
        store = RedisStore(
            Redis.from_url("redis://127.0.0.1:6379/15"),
            namespace=namespace,
            max_variants=3,
            timeout_s=10.0,
        )
        origin = MockOrigin(
            lambda r: Response(
                200, Headers({"cache-control": "max-age=60", "vary": "user-agent"}), b"x"
            )
        )
        async with EdgeCache(origin, store) as edge:
            for i in range(16):
                await edge.get("http://shop.test/v", {"user-agent": f"bot/{i}"})
            kept = await store.get("http://shop.test/v")
            assert 1 <= len(kept) <= 4
            assert any(e.variant == ("bot/15",) for e in kept)
            await edge.purge(PurgeSelector.everything())

    asyncio.run(main())
