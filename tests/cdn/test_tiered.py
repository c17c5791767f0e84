"""The tiered store's reads racing its own background writes to the far tier."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

from commercekit.cdn import (
    CacheStore,
    Headers,
    ManualClock,
    MemoryStore,
    StoredResponse,
    TieredStore,
)


class GatedFar:
    """A far store whose lookups answer what was there when they began, once let go."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.read_gate = asyncio.Event()
        self.write_gate = asyncio.Event()
        self.reading = asyncio.Event()

    async def get(self, key: str, /) -> Sequence[StoredResponse]:
        found = await self.inner.get(key)
        self.reading.set()
        await self.read_gate.wait()
        return found

    async def put(self, entry: StoredResponse, /) -> None:
        await self.write_gate.wait()
        await self.inner.put(entry)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def entry(key: str) -> StoredResponse:
    return StoredResponse(
        key=key,
        status=200,
        headers=Headers([("content-type", "image/png")]),
        body=b"body",
        request_time=1_000.0,
        response_time=1_000.0,
        initial_age=0,
        fresh_until=1_060.0,
        stale_while_revalidate_until=1_090.0,
        stale_if_error_until=1_120.0,
        keep_until=1_600.0,
    )


def tiered() -> tuple[TieredStore, GatedFar]:
    clock = ManualClock(1_000.0)
    far = GatedFar(MemoryStore(1_000_000, clock=clock))
    return TieredStore(MemoryStore(1_000_000, clock=clock), cast(CacheStore, far)), far


def test_a_read_that_began_while_the_far_write_was_under_way_keeps_the_write() -> None:
    async def main() -> None:
        store, far = tiered()
        await store.put(entry("k"))
        read = asyncio.ensure_future(store.get("k"))
        await far.reading.wait()  # the far tier answered "nothing" before the write landed
        far.write_gate.set()
        await store.flush()
        far.read_gate.set()
        assert [e.key for e in await read] == ["k"]
        assert [e.key for e in await store.get("k")] == ["k"]
        assert "k" in store.near

    asyncio.run(main())


def test_a_write_that_began_and_ended_during_a_read_is_not_undone_by_it() -> None:
    async def main() -> None:
        store, far = tiered()
        far.write_gate.set()
        read = asyncio.ensure_future(store.get("k"))
        await far.reading.wait()
        await store.put(entry("k"))
        await store.flush()
        far.read_gate.set()
        await read
        assert "k" in store.near  # the stale "nothing" did not delete the new entry
        assert [e.key for e in await store.get("k")] == ["k"]

    asyncio.run(main())
