"""The contract every CacheStore keeps: MemoryStore and RedisStore (real Redis) alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from commercekit.cdn import (
    CacheStore,
    Headers,
    ManualClock,
    MemoryStore,
    PurgeSelector,
    RedisStore,
    StoredResponse,
    TieredStore,
)
from tests.conftest import need_redis

REDIS_URL = "redis://127.0.0.1:6379/15"


@asynccontextmanager
async def memory_store(clock: ManualClock) -> AsyncIterator[CacheStore]:
    yield MemoryStore(1_000_000, clock=clock)


@asynccontextmanager
async def redis_store(clock: ManualClock) -> AsyncIterator[CacheStore]:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    namespace = f"test:{uuid.uuid4().hex}"
    # The contract is about behaviour, not the deadline (tested in test_breaker.py).
    store = RedisStore(client, namespace=namespace, clock=clock, timeout_s=10.0)
    try:
        yield store
    finally:
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*")]
        if keys:
            await client.delete(*keys)
        await store.aclose()


@asynccontextmanager
async def tiered_store(clock: ManualClock) -> AsyncIterator[CacheStore]:
    async with redis_store(clock) as far:
        yield TieredStore(MemoryStore(1_000_000, clock=clock), far)


@pytest.fixture(params=["memory", "redis", "tiered"])
def factory(request: pytest.FixtureRequest) -> object:
    if request.param in ("redis", "tiered"):
        need_redis()
        return redis_store if request.param == "redis" else tiered_store
    return memory_store


def entry(
    key: str,
    body: bytes = b"body",
    *,
    now: float = 1_000.0,
    ttl: float = 60,
    keep: float = 600,
    **kw: object,
) -> StoredResponse:
    return StoredResponse(
        key=key,
        status=200,
        headers=Headers([("content-type", "image/png"), ("etag", '"1"')]),
        body=body,
        request_time=now,
        response_time=now,
        initial_age=0,
        fresh_until=now + ttl,
        stale_while_revalidate_until=now + ttl + 30,
        stale_if_error_until=now + ttl + 60,
        keep_until=now + keep,
        **kw,  # type: ignore[arg-type]
    )


def check(factory: object, body: Callable[[CacheStore, ManualClock], Awaitable[None]]) -> None:
    async def main() -> None:
        clock = ManualClock(1_000.0)
        async with factory(clock) as store:  # type: ignore[operator]
            await body(store, clock)

    asyncio.run(main())


def test_round_trip_keeps_every_field(factory: object) -> None:
    async def body(store: CacheStore, clock: ManualClock) -> None:
        original = entry(
            "http://x/a",
            bytes(range(256)) * 10,
            vary=("accept-encoding",),
            variant=("gzip",),
            tags=frozenset({"t1", "t2"}),
            no_cache=True,
            revalidate_when_stale=True,
        )
        await store.put(original)
        [got] = await store.get("http://x/a")
        assert got == original
        assert await store.get("http://x/missing") == () or not await store.get("http://x/b")

    check(factory, body)


def test_variants_live_side_by_side(factory: object) -> None:
    async def body(store: CacheStore, clock: ManualClock) -> None:
        await store.put(entry("k", b"gz", vary=("accept-encoding",), variant=("gzip",)))
        await store.put(entry("k", b"br", vary=("accept-encoding",), variant=("br",)))
        await store.put(entry("k", b"gz2", vary=("accept-encoding",), variant=("gzip",)))
        got = sorted(e.body for e in await store.get("k"))
        assert got == [b"br", b"gz2"]

    check(factory, body)


def test_delete(factory: object) -> None:
    async def body(store: CacheStore, clock: ManualClock) -> None:
        await store.put(entry("k"))
        assert await store.delete("k")
        assert not await store.delete("k")
        assert not await store.get("k")

    check(factory, body)


def test_nothing_is_returned_past_keep_until(factory: object) -> None:
    async def body(store: CacheStore, clock: ManualClock) -> None:
        await store.put(entry("k", keep=100))
        clock.advance(101)
        assert not await store.get("k")

    check(factory, body)


def test_hard_purges(factory: object) -> None:
    async def body(store: CacheStore, clock: ManualClock) -> None:
        await store.put(entry("http://s/img/1", tags=frozenset({"p1", "img"})))
        await store.put(entry("http://s/img/2", tags=frozenset({"img"})))
        await store.put(entry("http://s/css/*[x]", tags=frozenset({"css"})))
        assert await store.purge(PurgeSelector.urls("http://s/img/1"), soft=False, now=1000) == 1
        assert not await store.get("http://s/img/1")
        assert await store.purge(PurgeSelector.tags("img"), soft=False, now=1000) == 1
        assert not await store.get("http://s/img/2")
        await store.put(entry("http://s/img/3"))
        assert await store.purge(PurgeSelector.prefixes("http://s/css/*["), soft=False, now=1) == 1
        assert await store.get("http://s/img/3")
        assert await store.purge(PurgeSelector.everything(), soft=False, now=1000) == 1
        assert not await store.get("http://s/img/3")

    check(factory, body)


def test_soft_purge_marks_stale_and_keeps_the_copy(factory: object) -> None:
    async def body(store: CacheStore, clock: ManualClock) -> None:
        await store.put(entry("a", tags=frozenset({"t"})))
        await store.put(entry("b"))
        clock.advance(5)
        assert await store.purge(PurgeSelector.tags("t"), soft=True, now=1005) == 1
        [a] = await store.get("a")
        assert a.fresh_until == 1005
        assert a.stale_if_error_until == 1065  # stale windows restart at the purge
        [b] = await store.get("b")
        assert b.fresh_until == 1060
        assert await store.purge(PurgeSelector.everything(), soft=True, now=1006) == 2
        [b] = await store.get("b")
        assert b.fresh_until == 1006
        # what is stored after a soft purge is fresh again
        await store.put(entry("a", b"new", now=1007))
        [a] = await store.get("a")
        assert a.body == b"new"
        assert a.fresh_until == 1067
        assert await store.purge(PurgeSelector.urls("zzz"), soft=True, now=1007) == 0

    check(factory, body)


def test_streaming_write_commits_whole_or_nothing(factory: object) -> None:
    async def body(store: CacheStore, clock: ManualClock) -> None:
        data = bytes(range(256)) * 12_000  # 3 MB: several Redis chunks
        template = entry("http://x/big", b"")
        writer = store.open_write(template, length=len(data))
        if writer is None:  # the store's bound is below 3 MB: a smaller body then
            data = data[:100_000]
            writer = store.open_write(template, length=len(data))
        assert writer is not None
        for start in range(0, len(data), 65_536):
            assert await writer.write(data[start : start + 65_536])
        assert not await store.get("http://x/big")  # nothing visible before the commit
        await writer.commit(entry("http://x/big", data))
        [got] = await store.get("http://x/big")
        assert await got.read_body() == data  # RedisStore streams it: got.body is b"" there
        aborted = store.open_write(entry("http://x/gone", b""), length=None)
        assert aborted is not None
        await aborted.write(data[:70_000])
        await aborted.abort()
        assert not await store.get("http://x/gone")

    check(factory, body)


def test_streaming_write_refuses_what_outgrows_the_store(factory: object) -> None:
    async def body(store: CacheStore, clock: ManualClock) -> None:
        assert store.open_write(entry("http://x/huge", b""), length=10**12) is None
        writer = store.open_write(entry("http://x/huge", b""), length=None)
        assert writer is not None
        piece = bytes(100_000)
        accepted = [await writer.write(piece) for _ in range(100)]
        assert accepted[0]
        assert not accepted[-1]
        assert not await store.get("http://x/huge")

    check(factory, body)
