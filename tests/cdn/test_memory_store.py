"""MemoryStore: byte bound, W-TinyLFU admission, the fast path, purges."""

from __future__ import annotations

import asyncio
import random

import pytest

from commercekit.cdn import Headers, ManualClock, MemoryStore, PurgeSelector, StoredResponse
from commercekit.cdn._stores._sketch import FrequencySketch
from commercekit.errors import ConfigurationError
from commercekit.metrics import InMemoryMetrics


def entry(key: str, size: int = 100, *, fresh_until: float = 1e12, **kw: object) -> StoredResponse:
    return StoredResponse(
        key=key,
        status=200,
        headers=Headers(),
        body=bytes(size),
        request_time=0,
        response_time=0,
        initial_age=0,
        fresh_until=fresh_until,
        stale_while_revalidate_until=fresh_until,
        stale_if_error_until=fresh_until,
        keep_until=kw.pop("keep_until", 1e12),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def test_bounded_by_bytes_not_entries() -> None:
    metrics = InMemoryMetrics()
    store = MemoryStore(10_000, metrics=metrics)
    for i in range(200):
        store.put_now(entry(f"k{i}", 500))
    assert store.size_bytes <= 10_000
    assert 0 < len(store) < 20
    assert metrics.value("commercekit_cdn_evictions_total", store="memory") > 0


def test_fast_path_needs_fresh_and_unvaried() -> None:
    clock = ManualClock(100)
    store = MemoryStore(10_000, clock=clock)
    store.put_now(entry("a", fresh_until=110))
    store.put_now(entry("v", vary=("accept",), variant=("x",)))
    assert store.fresh("a") is not None
    assert store.fresh("v") is None
    clock.advance(10)
    assert store.fresh("a") is None
    assert store.fresh("missing") is None


def test_variants_replace_their_own() -> None:
    async def main() -> None:
        store = MemoryStore(100_000)
        await store.put(entry("k", vary=("a",), variant=("1",)))
        await store.put(entry("k", vary=("a",), variant=("2",)))
        await store.put(entry("k", 10, vary=("a",), variant=("1",)))
        got = await store.get("k")
        assert sorted((e.variant, len(e.body)) for e in got) == [(("1",), 10), (("2",), 100)]

    asyncio.run(main())


def test_expired_past_keep_is_dropped_on_get() -> None:
    async def main() -> None:
        clock = ManualClock(100)
        store = MemoryStore(100_000, clock=clock)
        store.put_now(entry("k", keep_until=150))
        assert await store.get("k")
        clock.advance(60)
        assert not await store.get("k")
        assert "k" not in store

    asyncio.run(main())


def test_too_big_is_refused() -> None:
    store = MemoryStore(8000)
    store.put_now(entry("big", 2000))
    assert "big" not in store


def test_soft_and_hard_purge() -> None:
    async def main() -> None:
        store = MemoryStore(100_000)
        store.put_now(entry("http://a/1", tags=frozenset({"t"})))
        store.put_now(entry("http://a/2", tags=frozenset({"t", "u"})))
        store.put_now(entry("http://b/1"))
        assert await store.purge(PurgeSelector.tags("u"), soft=True, now=5) == 1
        [soft] = await store.get("http://a/2")
        assert soft.fresh_until == 5
        assert await store.purge(PurgeSelector.prefixes("http://a/"), soft=False, now=5) == 2
        assert len(store) == 1
        assert await store.purge(PurgeSelector.tags("t"), soft=False, now=5) == 0
        assert await store.purge(PurgeSelector.everything(), soft=False, now=5) == 1
        assert store.size_bytes == 0

    asyncio.run(main())


def test_bad_configuration() -> None:
    with pytest.raises(ConfigurationError):
        MemoryStore(0)
    with pytest.raises(ConfigurationError):
        MemoryStore(100, window_fraction=2)


def _zipf_trace(n: int, length: int, s: float, seed: int) -> list[int]:
    rng = random.Random(seed)
    weights = [1 / (i + 1) ** s for i in range(n)]
    return rng.choices(range(n), weights=weights, k=length)


def test_tinylfu_beats_lru_on_zipf() -> None:
    from cachetools import LRUCache

    trace = _zipf_trace(5_000, 40_000, 0.9, 7)
    capacity = 100 * 164  # about 100 entries of 100 body bytes
    store = MemoryStore(capacity, max_entry_bytes=capacity, seed=1)
    lru: LRUCache[int, int] = LRUCache(100)
    ours = theirs = 0
    for i in trace:
        key = f"k{i}"
        if key in store:
            store.fresh(key)
            ours += 1
        else:
            store.put_now(entry(key))
        if lru.get(i) is not None:
            theirs += 1
        else:
            lru[i] = 1
        assert store.size_bytes <= capacity
    assert ours > theirs * 1.1


def test_one_hit_wonders_do_not_flush_the_hot_set() -> None:
    store = MemoryStore(100 * 164, max_entry_bytes=10_000)
    hot = [f"hot{i}" for i in range(50)]
    for _ in range(20):
        for key in hot:
            if key not in store:
                store.put_now(entry(key))
            store.fresh(key)
    for i in range(2000):
        store.put_now(entry(f"scan{i}"))
    assert sum(key in store for key in hot) >= 45


def test_sketch_counts_and_ages() -> None:
    sketch = FrequencySketch(64)
    for _ in range(10):
        sketch.increment("a")
    assert sketch.frequency("a") == 10
    assert sketch.frequency("b") <= 1
    for i in range(sketch.width * 10):
        sketch.increment(i)
    assert sketch.frequency("a") < 10
    sketch.clear()
    assert sketch.frequency("a") == 0
