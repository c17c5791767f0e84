"""Unsafe requests invalidate what RFC 9111 4.4 names, and purges only what they purge."""

from __future__ import annotations

import asyncio

from commercekit.cdn import (
    EdgeCache,
    Headers,
    MemoryStore,
    MockOrigin,
    PurgeSelector,
    Request,
    Response,
)
from commercekit.cdn._edge._generations import Generations
from commercekit.cdn._purge._selector import PurgeKind

SLOW_S = 0.2


def _slow_origin(extra: dict[str, str] | None = None) -> MockOrigin:
    async def handler(request: Request) -> Response:
        if request.method == "GET" and "/slow/" in request.url:
            await asyncio.sleep(SLOW_S)
        headers = {"cache-control": "max-age=60", **(extra or {})}
        if request.method == "POST" and request.url.endswith("/orders"):
            headers["location"] = "http://shop.test/orders/7"
            headers["content-location"] = "http://elsewhere.test/slow/b"
        return Response(200, Headers(headers), b"body")

    return MockOrigin(handler)


def _gets(origin: MockOrigin, url: str) -> int:
    return sum(1 for r in origin.requests if r.method == "GET" and r.url == url)


def test_a_post_elsewhere_keeps_the_fill_in_flight() -> None:
    async def main() -> None:
        origin = _slow_origin()
        async with EdgeCache(origin) as edge:
            fill = asyncio.ensure_future(edge.get("http://shop.test/slow/b"))
            await asyncio.sleep(SLOW_S / 4)
            posted = await edge.handle(Request("POST", "http://shop.test/cart", Headers(), b"x"))
            assert posted.status == 200
            first = await fill
            assert first.headers.get("cache-status", "").endswith("; stored")
            again = await edge.get("http://shop.test/slow/b")
            assert again.outcome.value == "hit"
            assert _gets(origin, "http://shop.test/slow/b") == 1

    asyncio.run(main())


def test_a_post_to_the_url_discards_its_fill_and_cache_status_says_not_stored() -> None:
    async def main() -> None:
        origin = _slow_origin()
        async with EdgeCache(origin) as edge:
            fill = asyncio.ensure_future(edge.get("http://shop.test/slow/b"))
            await asyncio.sleep(SLOW_S / 4)
            await edge.handle(Request("POST", "http://shop.test/slow/b", Headers(), b"x"))
            first = await fill
            assert "stored" not in first.headers.get("cache-status", "")
            assert (await edge.get("http://shop.test/slow/b")).outcome.value == "miss"
            assert _gets(origin, "http://shop.test/slow/b") == 2

    asyncio.run(main())


def test_location_on_the_same_origin_is_invalidated_another_origin_is_not() -> None:
    async def main() -> None:
        origin = _slow_origin()
        store = MemoryStore(1 << 20)
        async with EdgeCache(origin, store) as edge:
            for url in ("http://shop.test/orders/7", "http://shop.test/orders/8"):
                await edge.get(url)
            await edge.handle(Request("POST", "http://shop.test/orders", Headers(), b"x"))
            assert "http://shop.test/orders/7" not in store
            assert "http://shop.test/orders/8" in store

    asyncio.run(main())


def test_a_tag_purge_discards_only_fills_with_that_tag() -> None:
    async def main() -> None:
        origin = _slow_origin({"surrogate-key": "shoes"})
        async with EdgeCache(origin) as edge:
            fill = asyncio.ensure_future(edge.get("http://shop.test/slow/b"))
            await asyncio.sleep(SLOW_S / 4)
            await edge.purge(PurgeSelector.tags("hats"))
            await fill
            assert (await edge.get("http://shop.test/slow/b")).outcome.value == "hit"
            fill = asyncio.ensure_future(edge.get("http://shop.test/slow/c"))
            await asyncio.sleep(SLOW_S / 4)
            await edge.purge(PurgeSelector.tags("shoes"))
            assert "stored" not in (await fill).headers.get("cache-status", "")
            assert (await edge.get("http://shop.test/slow/c")).outcome.value == "miss"

    asyncio.run(main())


def test_generations_stay_bounded_and_err_on_the_safe_side() -> None:
    gens = Generations(max_keys=100, max_log=4)
    started = gens.seq
    for i in range(1000):
        gens.touch_keys([f"k{i}"])
    assert len(gens) <= 101
    assert not gens.current(started, "other", frozenset())  # too old to tell: not stored
    now = gens.seq
    gens.record(PurgeSelector.prefixes("http://a/"))
    assert gens.current(now, "http://b/x", frozenset())
    assert not gens.current(now, "http://a/x", frozenset())
    gens.record(PurgeSelector(PurgeKind.ALL))
    assert not gens.current(now, "http://b/x", frozenset())
    assert gens.current(gens.seq, "http://b/x", frozenset())


def test_a_hostile_location_never_costs_the_client_its_answer() -> None:
    async def main() -> None:
        def answer(request: Request) -> Response:
            headers = {"cache-control": "max-age=60"}
            if request.method == "POST":
                headers = {"location": "/orders/\t7", "content-location": "HTTP://SHOP.TEST:80/b"}
            return Response(201 if request.method == "POST" else 200, Headers(headers), b"ok")

        store = MemoryStore(1 << 20)
        async with EdgeCache(MockOrigin(answer), store) as edge:
            await edge.get("http://shop.test/b")
            posted = await edge.handle(Request("POST", "http://shop.test/orders", Headers(), b"x"))
            assert posted.status == 201
            assert "http://shop.test/b" not in store  # the same origin, spelt otherwise

    asyncio.run(main())
