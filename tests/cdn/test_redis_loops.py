"""RedisStore.from_url: a ``redis.asyncio`` client owned by the event loop of its first call.

Against the real local Redis (db 15). Kept past ``asyncio.run()`` the store
holds no socket, a later loop gets its own client (not "Event loop is
closed"), another running loop is refused, and a call as the loop finalizes
is refused as a store failure (the edge treats it as a miss).
"""

from __future__ import annotations

import asyncio
import gc
import warnings

import attrs
import pytest

from commercekit.cdn import Headers, RedisStore, StoredResponse, StoreUnavailableError
from commercekit.errors import ConfigurationError
from tests._loops import another_loop_holds, call_as_the_loop_finalizes
from tests.cdn.conftest import REDIS_URL

pytestmark = pytest.mark.usefixtures("require_redis")


def _entry(key: str, body: bytes) -> StoredResponse:
    return StoredResponse(
        key=key,
        status=200,
        headers=Headers([("content-type", "text/plain")]),
        body=body,
        request_time=1.0,
        response_time=1.0,
        initial_age=0.0,
        fresh_until=10**10,
        stale_while_revalidate_until=10**10,
        stale_if_error_until=10**10,
        keep_until=10**10,
    )


def test_from_url_serves_a_second_event_loop_and_leaks_nothing(namespace: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stores = [RedisStore.from_url(REDIS_URL, namespace=namespace, timeout_s=5.0)]

        async def put_then_get(body: bytes) -> bytes:
            await stores[0].put(_entry("k", body))
            [got] = await stores[0].get("k")
            return got.body

        assert asyncio.run(put_then_get(b"one")) == b"one"
        assert asyncio.run(put_then_get(b"two")) == b"two"  # was "Event loop is closed"
        stores.clear()  # dropped: nothing of it is left open
        gc.collect()
    assert [str(w.message) for w in caught] == []


def test_aclose_and_async_with_close_it_at_once(namespace: str) -> None:
    async def main() -> None:
        async with RedisStore.from_url(REDIS_URL, namespace=namespace) as store:
            assert await store.get("k") == []
            assert store._clients.pool is not None
        assert store._clients.pool is None
        assert await store.get("k") == []  # a closed store reconnects on use, on this loop
        await store.aclose()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(main())
        gc.collect()
    assert [str(w.message) for w in caught] == []


def test_another_running_loop_is_a_configuration_error(namespace: str) -> None:
    store = RedisStore.from_url(REDIS_URL, namespace=namespace)
    with (
        another_loop_holds(lambda: store.get("k")),
        pytest.raises(ConfigurationError, match="another event loop"),
    ):
        asyncio.run(store.get("k"))
    assert asyncio.run(store.get("k")) == []  # its loop has ended: this one gets a client


def test_a_call_as_the_loop_finalizes_is_a_store_failure(namespace: str) -> None:
    async def first(store: RedisStore) -> None:
        assert await store.get("k") == []

    late = call_as_the_loop_finalizes(
        lambda: RedisStore.from_url(REDIS_URL, namespace=namespace),
        lambda store: store.get("k"),
        first=first,
    )
    assert isinstance(late.outcome, StoreUnavailableError)
    assert late.warnings == []


def test_a_callers_client_kept_past_its_loop_is_a_configuration_error(namespace: str) -> None:
    """A client passed in is the caller's: on a later loop the store says so, typed."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    store = RedisStore(client, namespace=namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # the caller's socket: it leaks
        assert asyncio.run(store.get("k")) == []
        with pytest.raises(ConfigurationError, match="another event loop") as raised:
            asyncio.run(store.get("k"))  # was RuntimeError: Event loop is closed
        assert not store.breaker.is_open
        del raised, store, client
        gc.collect()


def test_each_call_asks_for_the_loops_client_once(namespace: str) -> None:
    """The client is resolved once per store call, not once per Redis command it sends."""
    from commercekit.cdn import PurgeKind, PurgeSelector

    store = RedisStore.from_url(REDIS_URL, namespace=namespace, chunk_bytes=1024, max_variants=1)
    assert store._clients is not None
    real = store._clients.get
    asked: list[int] = []

    async def get() -> object:
        asked.append(1)
        return await real()

    store._clients.get = get  # type: ignore[method-assign]

    def tagged(key: str, body: bytes, variant: str) -> StoredResponse:
        entry = _entry(key, body)
        tags = frozenset({"a", "b"})
        return attrs.evolve(entry, vary=("x",), variant=(variant,), tags=tags)

    by_tag = PurgeSelector(PurgeKind.TAG, ("a", "b"))
    everything = PurgeSelector(PurgeKind.ALL)

    async def main() -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, call in (
            ("put", lambda: store.put(tagged("k", b"x" * 10, "1"))),
            ("put over a variant", lambda: store.put(tagged("k", b"y" * 10, "2"))),
            ("get", lambda: store.get("k")),
            ("put chunked", lambda: store.put(tagged("c", b"z" * 4000, "1"))),
            ("get chunked", lambda: store.get("c")),
            ("purge by tag", lambda: store.purge(by_tag, soft=True, now=2.0)),
            ("purge all", lambda: store.purge(everything, soft=False, now=3.0)),
        ):
            asked.clear()
            await call()
            counts[name] = len(asked)
        await store.aclose()
        return counts

    counts = asyncio.run(main())
    assert counts == dict.fromkeys(counts, 1)
