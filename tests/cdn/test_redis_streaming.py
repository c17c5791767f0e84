"""A large body stored in Redis is read back a few chunks at a time, one immutable version.

Against the real local Redis (db 15, a fresh namespace per test): a 20 MiB
body streams with a tracemalloc peak of one read batch, small bodies come
back whole as before, and a purge, an overwrite or a lost chunk racing a
reader mid-body (interleaved deterministically: read some, act, read on)
either lets it finish the version it started or breaks the stream, never
yielding a mixed or silently short body.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commercekit.cdn import (
    BodyStream,
    CacheOutcome,
    EdgeCache,
    Headers,
    HttpOrigin,
    ManualClock,
    MockOrigin,
    OriginError,
    PurgeSelector,
    RedisStore,
    Request,
    Response,
    StoredResponse,
    StoreUnavailableError,
)
from commercekit.cdn._stores._redis_chunks import ChunkedBody
from tests.cdn.conftest import REDIS_URL

from ._loopback import PATTERN, StreamingServer, pattern_bytes
from .test_streaming import digest, fetch, peak_while, proxy

# These tests are about streaming, not deadlines: a loaded CI machine must not trip the store's.
SLACK_TIMEOUT_S = 10.0
MiB = 1024 * 1024
NOW = 1_000.0
KEY = "https://video.shop.test/intro.mp4"


pytestmark = pytest.mark.usefixtures("require_redis")


@asynccontextmanager
async def redis_store(namespace: str, **kw: Any) -> AsyncIterator[RedisStore]:
    from redis.asyncio import Redis

    kw.setdefault("max_entry_bytes", 64 * MiB)
    kw.setdefault("timeout_s", SLACK_TIMEOUT_S)
    store = RedisStore(Redis.from_url(REDIS_URL), namespace=namespace, clock=ManualClock(NOW), **kw)
    try:
        yield store
    finally:
        await store.aclose()


def entry(body: bytes = b"", *, key: str = KEY, **kw: Any) -> StoredResponse:
    return StoredResponse(
        key=key,
        status=200,
        headers=Headers([("content-type", "video/mp4"), ("etag", '"1"')]),
        body=body,
        request_time=NOW,
        response_time=NOW,
        initial_age=0,
        fresh_until=NOW + 60,
        stale_while_revalidate_until=NOW + 60,
        stale_if_error_until=NOW + 60,
        keep_until=NOW + 600,
        **kw,
    )


async def store_pattern(store: RedisStore, size: int, key: str = KEY, **kw: Any) -> None:
    """Store a *size*-byte pattern body (byte i is i % 256) as the edge does: streamed in."""
    writer = store.open_write(entry(key=key, **kw), length=size)
    assert writer is not None
    for start in range(0, size, len(PATTERN)):
        assert await writer.write(PATTERN[: min(len(PATTERN), size - start)])
    await writer.commit(entry(key=key, **kw))


async def stored_body(store: RedisStore, key: str = KEY) -> ChunkedBody:
    """The body a lookup of *key* finds, not yet read (what a hit streams)."""
    [found] = await store.get(key)
    assert found.body == b""
    assert isinstance(found.stored_body, ChunkedBody)
    return found.stored_body


async def take(stream: AsyncIterator[bytes], size: int) -> bytes:
    """Read whole pieces of *stream* until at least *size* bytes came."""
    got = bytearray()
    while len(got) < size:
        got += await anext(stream)
    return bytes(got)


async def drain(stream: AsyncIterator[bytes], into: bytearray) -> None:
    async for piece in stream:
        into += piece


async def chunk_ttls(store: RedisStore, body: ChunkedBody) -> list[int]:
    return [await store._redis.ttl(k) for k in body.chunk_keys()]


def count_mgets(store: RedisStore) -> list[int]:
    """Count the chunk round trips *store* makes (the real client still answers them)."""
    calls: list[int] = []
    real = store._redis.mget

    def mget(keys: list[str]) -> Awaitable[Any]:
        calls.append(len(keys))
        return real(keys)

    store._redis.mget = mget  # type: ignore[method-assign,assignment]
    return calls


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())  # type: ignore[arg-type]


# -- a large hit streams ----------------------------------------------------------------


def test_a_20_mib_body_streams_byte_exact_holding_one_batch(namespace: str) -> None:
    size = 20 * MiB
    rounds: list[int] = []

    async def fill() -> None:
        async with redis_store(namespace) as store:
            await store_pattern(store, size)
            await store_pattern(store, 3 * MiB, key="https://video.shop.test/warm-up")

    async def serve(key: str, expected: str) -> None:
        async with redis_store(namespace) as store:
            calls = count_mgets(store)
            body = await stored_body(store, key)
            h = hashlib.sha256()
            async for piece in body.open():
                assert len(piece) <= 64 * 1024
                h.update(piece)
            assert h.hexdigest() == expected
            rounds[:] = calls

    run(fill)
    run(lambda: serve("https://video.shop.test/warm-up", digest(3 * MiB)))  # imports, parsers
    peak = peak_while(lambda: serve(KEY, digest(size)))
    print(f"Redis hit of 20 MiB, streamed: tracemalloc peak {peak / MiB:.2f} MiB")
    assert peak < 6 * MiB  # one batch of 2 MiB, and redis-py's read buffer of it
    assert rounds == [2] * 10  # 2 chunks of 1 MiB per round trip


def test_a_large_body_comes_back_unread_and_reads_whole(namespace: str) -> None:
    async def main() -> None:
        async with redis_store(namespace) as store:
            await store_pattern(store, 3 * MiB + 5)
            [got] = await store.get(KEY)
            assert got.body == b""
            assert got.body_length == 3 * MiB + 5
            assert await got.read_body() == pattern_bytes(0, 3 * MiB + 4)

    run(main)


@pytest.mark.parametrize("size", [0, 1000, MiB])
def test_small_bodies_stay_in_the_hash_and_come_back_as_bytes(namespace: str, size: int) -> None:
    async def main() -> None:
        async with redis_store(namespace) as store:
            await store.put(entry(pattern_bytes(0, size - 1), key="https://s.test/put"))
            await store_pattern(store, size, key="https://s.test/streamed")
            for key in ("https://s.test/put", "https://s.test/streamed"):
                [got] = await store.get(key)
                assert got.stored_body is None
                assert got.body == pattern_bytes(0, size - 1)
            assert [k async for k in store._redis.scan_iter(match=f"{namespace}:c:*")] == []

    run(main)


def test_a_range_fetches_only_the_chunks_it_covers(namespace: str) -> None:
    size, chunk = 10_000, 1_000

    async def fill() -> None:
        async with redis_store(namespace, chunk_bytes=chunk) as store:
            await store_pattern(store, size)

    run(fill)

    @settings(max_examples=60, deadline=None)
    @given(st.integers(0, size - 1), st.integers(0, size - 1))
    def check(a: int, b: int) -> None:
        first, last = min(a, b), max(a, b)

        async def main() -> None:
            async with redis_store(namespace, chunk_bytes=chunk) as store:
                calls = count_mgets(store)
                stream = (await stored_body(store)).open(first, last)
                assert stream.length == last - first + 1
                assert await stream.read() == pattern_bytes(first, last)
                assert sum(calls) == last // chunk - first // chunk + 1

        run(main)

    check()


def test_chunks_outlive_keep_until_by_the_grace(namespace: str) -> None:
    async def main() -> None:
        async with redis_store(namespace, chunk_grace_s=300) as store:
            await store_pattern(store, 2 * MiB + 1)
            ttls = await chunk_ttls(store, await stored_body(store))
            assert len(ttls) == 3
            assert all(600 + 300 - 5 <= t <= 600 + 300 for t in ttls)

    run(main)


def test_a_manifest_without_its_chunk_size_is_read_with_the_stores(namespace: str) -> None:
    async def main() -> None:
        async with redis_store(namespace) as store:
            await store_pattern(store, 2 * MiB + 7)
            body = await stored_body(store)
            fields = await store._redis.hgetall(store._k(KEY))
            [(field, raw)] = [
                (f, v) for f, v in fields.items() if isinstance(f, bytes) and f.startswith(b"m:")
            ]
            meta = json.loads(raw)
            meta["c"] = meta["c"][:3]  # as written before the size was recorded
            await store._redis.hset(store._k(KEY), field, json.dumps(meta))
            assert (await stored_body(store)) == body
            meta["c"] = [body.write_id, 5, 2 * MiB + 7]  # numbers that cannot be: a miss
            await store._redis.hset(store._k(KEY), field, json.dumps(meta))
            assert await store.get(KEY) == []

    run(main)


# -- concurrent purges, overwrites and lost chunks ----------------------------------------


PURGES: dict[str, Callable[[RedisStore], Awaitable[object]]] = {
    "url": lambda s: s.purge(PurgeSelector.urls(KEY), soft=False, now=NOW),
    "tag": lambda s: s.purge(PurgeSelector.tags("intro"), soft=False, now=NOW),
    "prefix": lambda s: s.purge(PurgeSelector.prefixes("https://video."), soft=False, now=NOW),
    "everything": lambda s: s.purge(PurgeSelector.everything(), soft=False, now=NOW),
    "delete": lambda s: s.delete(KEY),
}


@pytest.mark.parametrize("kind", PURGES)
def test_a_purge_mid_stream_lets_the_reader_finish_the_version_it_started(
    namespace: str, kind: str
) -> None:
    size = 3 * MiB + 123

    async def main() -> None:
        async with redis_store(namespace, chunk_grace_s=300) as store:
            await store_pattern(store, size, tags=frozenset({"intro"}))
            body = await stored_body(store)
            stream = aiter(body.open())
            head = await take(stream, MiB + 1)  # into the second chunk
            await PURGES[kind](store)
            assert await store.get(KEY) == []  # the next request sees the purge
            assert all(0 < t <= 300 for t in await chunk_ttls(store, body))
            rest = b"".join([piece async for piece in stream])
            assert head + rest == pattern_bytes(0, size - 1)

    run(main)


@pytest.mark.parametrize("new_size", [2 * MiB + 9, 500])
def test_an_overwrite_mid_stream_never_mixes_versions(namespace: str, new_size: int) -> None:
    size = 4 * MiB
    new = bytes(reversed(pattern_bytes(0, new_size - 1)))

    async def main() -> None:
        async with redis_store(namespace, chunk_grace_s=300) as store:
            await store_pattern(store, size)
            old_body = await stored_body(store)
            stream = aiter(old_body.open())
            head = await take(stream, 2 * MiB + 1)
            await store.put(entry(new))
            [now_stored] = await store.get(KEY)
            assert await now_stored.read_body() == new  # the next request gets the new one
            assert all(0 < t <= 300 for t in await chunk_ttls(store, old_body))
            rest = b"".join([piece async for piece in stream])
            assert head + rest == pattern_bytes(0, size - 1)  # the old one, whole

    run(main)


def test_replacing_with_the_same_write_keeps_its_chunks(namespace: str) -> None:
    async def main() -> None:
        async with redis_store(namespace, chunk_grace_s=300) as store:
            await store_pattern(store, 2 * MiB + 1)
            body = await stored_body(store)
            await store._commit(entry(), None, body.manifest())  # e.g. refreshed headers
            assert all(t > 300 for t in await chunk_ttls(store, body))
            assert await body.open().read() == pattern_bytes(0, 2 * MiB)

    run(main)


def test_a_purge_with_no_grace_breaks_a_reader_off_instead_of_ending_it_short(
    namespace: str,
) -> None:
    size = 6 * MiB

    async def main() -> None:
        async with redis_store(namespace, chunk_grace_s=0) as store:
            await store_pattern(store, size)
            body = await stored_body(store)
            pieces = aiter(body.open())
            head = await take(pieces, MiB + 1)  # chunks 0 and 1 came in the first round trip
            await store.purge(PurgeSelector.urls(KEY), soft=False, now=NOW)
            assert await store._redis.exists(*body.chunk_keys()) == 0
            got = bytearray(head)
            with pytest.raises(StoreUnavailableError, match=r"chunk 2 of 6 .* is gone"):
                await drain(pieces, got)
            assert got == pattern_bytes(0, 2 * MiB - 1)  # what was read is right; no more

    run(main)


@pytest.mark.parametrize("damage", ["evicted", "wrong size"])
def test_a_chunk_lost_mid_stream_breaks_the_stream_and_is_a_miss_next(
    namespace: str, damage: str
) -> None:
    size = 6 * MiB

    async def main() -> None:
        async with redis_store(namespace) as store:
            await store_pattern(store, size)
            body = await stored_body(store)
            pieces = aiter(body.open())
            await take(pieces, MiB)
            victim = body.chunk_keys()[4]
            if damage == "evicted":  # what maxmemory does to one key
                await store._redis.delete(victim)
            else:
                await store._redis.set(victim, b"x" * 1000)
            with pytest.raises(StoreUnavailableError, match="chunk 4 of 6"):
                await drain(pieces, bytearray())
            if damage == "evicted":
                assert await store.get(KEY) == []  # the next request refetches it

    run(main)


# -- a reader that stops early --------------------------------------------------------------


def test_a_reader_that_stops_early_releases_its_batch_and_connection(namespace: str) -> None:
    from redis.asyncio import BlockingConnectionPool, Redis

    async def main() -> None:
        async with redis_store(namespace) as store:
            await store_pattern(store, 8 * MiB)
        # one connection only: a reader that kept it would block the next command
        pool = BlockingConnectionPool.from_url(REDIS_URL, max_connections=1, timeout=2)
        store = RedisStore(
            Redis.from_pool(pool),
            namespace=namespace,
            clock=ManualClock(NOW),
            timeout_s=SLACK_TIMEOUT_S,
        )
        try:
            body = await stored_body(store)
            untouched = body.open()
            await untouched.aclose()  # opened, never read: no round trip, nothing to free
            before = tracemalloc.get_traced_memory()[0]
            stream = body.open()
            pieces = aiter(stream)
            await take(pieces, 100_000)
            assert await store._redis.ping()  # mid-body, the reader holds no connection
            held = tracemalloc.get_traced_memory()[0] - before
            await stream.aclose()
            released = tracemalloc.get_traced_memory()[0] - before
            assert held > MiB  # it held a batch ...
            assert released < 256 * 1024  # ... and let go of it
            with pytest.raises(OriginError, match="ended after"):
                await anext(pieces)  # a stream closed early never looks complete
            assert await body.open(0, 9).read() == pattern_bytes(0, 9)
        finally:
            await store.aclose()

    tracemalloc.start()
    try:
        run(main)
    finally:
        tracemalloc.stop()


# -- through the edge ---------------------------------------------------------------------


async def wait_stored(store: RedisStore, key: str) -> None:
    for _ in range(1000):  # the pump commits after the last byte, in its own task (10 s)
        if await store.get(key):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{key} was never stored")


def test_a_20_mib_hit_streams_from_redis_through_the_proxy(namespace: str) -> None:
    size = 20 * MiB
    path = f"/{size}"
    host = {"host": "video.shop.test"}  # one cache key, whatever port each proxy gets

    def edge(origin_url: str) -> EdgeCache:
        store = RedisStore.from_url(
            REDIS_URL, namespace=namespace, max_entry_bytes=64 * MiB, timeout_s=SLACK_TIMEOUT_S
        )
        return EdgeCache(HttpOrigin(origin_url), store)

    with StreamingServer() as origin:

        async def fill() -> None:
            e = edge(origin.url)
            async with proxy(e) as client:
                status, got, _, _ = await fetch(client, path, host)
                assert (status, got) == (200, digest(size))
                await wait_stored(e.store, f"http://video.shop.test{path}")  # type: ignore[arg-type]

        async def hits() -> None:
            async with proxy(edge(origin.url)) as client:
                status, got, got_size, headers = await fetch(client, path, host)
                assert (status, got_size, got) == (200, size, digest(size))
                assert "hit" in headers["cache-status"]
                assert headers["content-length"] == str(size)
                ranged = {**host, "range": "bytes=3145720-3145735"}
                part = await client.get(path, headers=ranged)
                assert part.status_code == 206
                assert part.content == pattern_bytes(3145720, 3145735)
                status, got, _, _ = await fetch(client, path, {**host, "range": "bytes=0-"})
                assert (status, got) == (206, digest(size))
                head = await client.head(path, headers=host)
                assert head.headers["content-length"] == str(size)

        run(fill)
        peak = peak_while(hits)
        print(f"Redis hit of 20 MiB through the proxy: tracemalloc peak {peak / MiB:.2f} MiB")
        assert peak < 6 * MiB
        assert origin.requests == 1


def versioned_origin(data: list[bytes], fail: list[bool]) -> MockOrigin:
    def handler(request: Request) -> Response:
        if fail[0]:
            raise OriginError("the origin is down")
        etag = f'"{len(data)}"'
        headers = {"cache-control": "max-age=60, stale-if-error=600", "etag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(304, Headers(headers))
        headers["content-length"] = str(len(data[-1]))
        return Response(200, Headers(headers), stream=BodyStream.of(data[-1]))

    return MockOrigin(handler)


def test_a_revalidated_or_stale_redis_hit_streams_the_same_chunks(namespace: str) -> None:
    data, fail = [pattern_bytes(0, 3 * MiB + 10)], [False]
    url = "https://img.shop.test/big.jpg"

    async def main() -> None:
        clock = ManualClock(NOW)
        store = RedisStore.from_url(
            REDIS_URL, namespace=namespace, clock=clock, timeout_s=SLACK_TIMEOUT_S
        )
        origin = versioned_origin(data, fail)
        async with EdgeCache(origin, store, clock=clock) as edge:
            assert await (await edge.get(url)).read() == data[0]
            await wait_stored(store, url)
            body = await stored_body(store, url)
            hit = await edge.get(url)
            assert (hit.outcome, hit.body) == (CacheOutcome.HIT, b"")
            assert await hit.read() == data[0]
            clock.advance(61)
            again = await edge.get(url)
            assert again.outcome is CacheOutcome.REVALIDATED
            assert await again.read() == data[0]
            assert await stored_body(store, url) == body  # the same write, not a copy
            [entry_now] = await store.get(url)
            assert entry_now.fresh_until == NOW + 61 + 60
            clock.advance(61)
            fail[0] = True
            stale = await edge.get(url)
            assert stale.outcome is CacheOutcome.STALE_IF_ERROR
            assert await stale.read() == data[0]
            assert len(origin.requests) == 3

    run(main)


def test_an_edge_purge_mid_hit_is_seen_next_and_the_hit_finishes_its_version(
    namespace: str,
) -> None:
    data, fail = [pattern_bytes(0, 3 * MiB + 10)], [False]
    url = "https://img.shop.test/big.jpg"

    async def main() -> None:
        store = RedisStore.from_url(REDIS_URL, namespace=namespace, timeout_s=SLACK_TIMEOUT_S)
        origin = versioned_origin(data, fail)
        async with EdgeCache(origin, store) as edge:
            await (await edge.get(url)).read()
            await wait_stored(store, url)
            hit = await edge.get(url)
            assert hit.stream is not None
            pieces = aiter(hit.stream)
            head = await take(pieces, MiB + 1)
            data.append(bytes(reversed(data[0])))
            await edge.purge(PurgeSelector.urls(url))
            fresh = await edge.get(url)
            assert fresh.outcome is CacheOutcome.MISS
            assert await fresh.read() == data[1]
            rest = b"".join([piece async for piece in pieces])
            assert head + rest == data[0]

    run(main)


def test_a_body_from_another_store_is_copied_in_chunks(namespace: str) -> None:
    async def main() -> None:
        async with (
            redis_store(namespace) as source,
            redis_store(namespace + ":copy") as target,
            redis_store(namespace + ":small", max_entry_bytes=MiB) as small,
        ):
            await store_pattern(source, 2 * MiB + 3)
            [found] = await source.get(KEY)
            await target.put(found)
            copied = await stored_body(target)
            assert copied.write_id != (await stored_body(source)).write_id
            assert await copied.open().read() == pattern_bytes(0, 2 * MiB + 2)
            await small.put(found)  # over its bound: not stored
            assert await small.get(KEY) == []

    run(main)
