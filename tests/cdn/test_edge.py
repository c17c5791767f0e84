"""EdgeCache end to end against a mock origin, with a manual clock."""

from __future__ import annotations

import asyncio

import pytest

from commercekit.cdn import (
    CacheOutcome,
    CachePolicy,
    Headers,
    OriginError,
    PurgeSelector,
    Request,
    Response,
)

from ._helpers import make_edge

URL = "http://shop.test/img/a.png"


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_miss_then_hit_with_age() -> None:
    async def main() -> None:
        edge, origin, _, clock, metrics = make_edge()
        first = await edge.get(URL)
        assert first.outcome is CacheOutcome.MISS
        assert first.body == b"v1 img/a.png"
        clock.advance(7.5)
        second = await edge.get(URL)
        assert second.outcome is CacheOutcome.HIT
        assert second.headers.get("age") == "7"
        assert "hit" in (second.headers.get("cache-status") or "")
        assert len(origin.requests) == 1
        assert metrics.value("commercekit_cdn_hits_total", edge="edge") == 1
        assert metrics.value("commercekit_cdn_misses_total", edge="edge") == 1

    run(main())


def test_upstream_age_counts_against_freshness() -> None:
    async def main() -> None:
        edge, origin, versioned, clock, _ = make_edge("max-age=60")
        versioned.extra = {"age": "50"}
        await edge.get(URL)
        clock.advance(5)
        hit = await edge.get(URL)
        assert hit.headers.get("age") == "55"
        assert hit.outcome is CacheOutcome.HIT
        clock.advance(6)
        assert (await edge.get(URL)).outcome is CacheOutcome.REVALIDATED
        assert len(origin.requests) == 2

    run(main())


@pytest.mark.parametrize(
    "cache_control", ["no-store", "private, max-age=60", "max-age=60, no-store"]
)
def test_not_stored(cache_control: str) -> None:
    async def main() -> None:
        edge, origin, _, _, _ = make_edge(cache_control)
        await edge.get(URL)
        await edge.get(URL)
        assert len(origin.requests) == 2

    run(main())


def test_set_cookie_is_not_stored() -> None:
    async def main() -> None:
        edge, origin, versioned, _, _ = make_edge()
        versioned.extra = {"set-cookie": "session=secret"}
        await edge.get(URL)
        await edge.get(URL)
        assert len(origin.requests) == 2

    run(main())


def test_cdn_cache_control_beats_cache_control() -> None:
    async def main() -> None:
        edge, origin, versioned, clock, _ = make_edge("no-store")
        versioned.extra = {"cdn-cache-control": "max-age=600"}
        await edge.get(URL)
        clock.advance(300)
        assert (await edge.get(URL)).outcome is CacheOutcome.HIT
        assert len(origin.requests) == 1

    run(main())


def test_vary_keeps_several_variants() -> None:
    async def main() -> None:
        def handler(request: Request) -> Response:
            lang = request.headers.get("accept-language") or "none"
            return Response(
                200,
                Headers({"cache-control": "max-age=60", "vary": "Accept-Language"}),
                lang.encode(),
            )

        edge, origin, _, _, _ = make_edge(handler=handler)
        for lang in ("de", "fr", "de", "fr", "de"):
            response = await edge.get(URL, {"accept-language": lang})
            assert response.body == lang.encode()
        assert (await edge.get(URL)).body == b"none"
        assert len(origin.requests) == 3

    run(main())


def test_revalidation_merges_the_304() -> None:
    async def main() -> None:
        edge, origin, _, clock, _ = make_edge("max-age=10")
        await edge.get(URL)
        clock.advance(11)
        response = await edge.get(URL)
        assert response.outcome is CacheOutcome.REVALIDATED
        assert response.body == b"v1 img/a.png"
        assert origin.requests[-1].headers.get("if-none-match") == '"v1"'
        assert response.headers.get("content-type") == "text/plain"
        clock.advance(5)
        assert (await edge.get(URL)).outcome is CacheOutcome.HIT

    run(main())


def test_changed_content_replaces_the_stored_one() -> None:
    async def main() -> None:
        edge, _, versioned, clock, _ = make_edge("max-age=10")
        await edge.get(URL)
        versioned.version = 2
        clock.advance(11)
        assert (await edge.get(URL)).body.startswith(b"v2")

    run(main())


def test_stale_while_revalidate_serves_at_once_and_refreshes_once() -> None:
    async def main() -> None:
        edge, origin, versioned, clock, _ = make_edge("max-age=10, stale-while-revalidate=60")
        await edge.get(URL)
        versioned.version = 2
        clock.advance(15)
        responses = await asyncio.gather(*(edge.get(URL) for _ in range(50)))
        assert {r.outcome for r in responses} == {CacheOutcome.STALE_WHILE_REVALIDATE}
        assert {r.body for r in responses} == {b"v1 img/a.png"}
        await asyncio.sleep(0)  # let the one background refresh run
        await asyncio.sleep(0)
        assert len(origin.requests) == 2
        fresh = await edge.get(URL)
        assert fresh.outcome is CacheOutcome.HIT
        assert fresh.body.startswith(b"v2")
        await edge.aclose()

    run(main())


def test_stale_if_error_within_the_window_only() -> None:
    async def main() -> None:
        edge, _, versioned, clock, metrics = make_edge("max-age=10, stale-if-error=100")
        await edge.get(URL)
        versioned.fail = OriginError("down")
        clock.advance(50)
        response = await edge.get(URL)
        assert response.outcome is CacheOutcome.STALE_IF_ERROR
        assert metrics.value("commercekit_cdn_stale_served_total", edge="edge", reason="if_error")
        clock.advance(100)
        with pytest.raises(OriginError):
            await edge.get(URL)

    run(main())


def test_stale_if_error_covers_5xx() -> None:
    async def main() -> None:
        edge, _, versioned, clock, _ = make_edge("max-age=10, stale-if-error=100")
        await edge.get(URL)
        versioned.status = 503
        versioned.version = 2
        clock.advance(20)
        response = await edge.get(URL)
        assert response.status == 200
        assert response.outcome is CacheOutcome.STALE_IF_ERROR

    run(main())


def test_must_revalidate_never_serves_stale() -> None:
    async def main() -> None:
        edge, _, versioned, clock, _ = make_edge(
            "max-age=10, must-revalidate, stale-if-error=100, stale-while-revalidate=100"
        )
        await edge.get(URL)
        versioned.fail = OriginError("down")
        clock.advance(11)
        with pytest.raises(OriginError):
            await edge.get(URL)

    run(main())


def test_origin_exceptions_become_origin_errors() -> None:
    async def main() -> None:
        def boom(request: Request) -> Response:
            raise RuntimeError("socket exploded")

        edge, _, _, _, _ = make_edge(handler=boom)
        with pytest.raises(OriginError) as info:
            await edge.get(URL)
        assert isinstance(info.value.__cause__, RuntimeError)

    run(main())


def test_origin_timeout() -> None:
    async def main() -> None:
        async def slow(request: Request) -> Response:
            await asyncio.sleep(10)
            raise AssertionError("unreachable")

        edge, _, _, _, _ = make_edge(handler=slow, origin_timeout_s=0.01)  # type: ignore[arg-type]
        with pytest.raises(OriginError, match="within"):
            await edge.get(URL)

    run(main())


def test_unsafe_method_invalidates() -> None:
    async def main() -> None:
        edge, origin, versioned, _, _ = make_edge()
        await edge.get(URL)
        other = "http://shop.test/img/b.png"
        await edge.get(other)
        versioned.extra = {"location": "/img/b.png"}
        post = await edge.handle(Request("POST", URL, body=b"x"))
        assert post.outcome is CacheOutcome.PASS
        versioned.extra = {}
        await edge.get(URL)
        await edge.get(other)
        assert len(origin.requests) == 5
        assert origin.requests[2].method == "POST"
        assert origin.requests[2].body == b"x"

    run(main())


def test_head_is_served_from_the_get_entry() -> None:
    async def main() -> None:
        edge, origin, _, _, _ = make_edge()
        head = await edge.handle(Request("HEAD", URL))
        assert head.body == b""
        assert head.status == 200
        assert origin.requests[0].method == "GET"
        get = await edge.get(URL)
        assert get.outcome is CacheOutcome.HIT
        assert get.body

    run(main())


def test_range_and_conditional_from_the_cache() -> None:
    async def main() -> None:
        edge, origin, _, _, _ = make_edge()
        await edge.get(URL)
        part = await edge.get(URL, {"range": "bytes=0-1"})
        assert part.status == 206
        assert part.body == b"v1"
        nm = await edge.get(URL, {"if-none-match": '"v1"'})
        assert nm.status == 304
        assert nm.body == b""
        assert len(origin.requests) == 1
        assert "range" not in origin.requests[0].headers

    run(main())


def test_request_no_cache_is_ignored_unless_asked() -> None:
    async def main() -> None:
        edge, origin, _, _, _ = make_edge()
        await edge.get(URL)
        await edge.get(URL, {"cache-control": "no-cache"})
        assert len(origin.requests) == 1
        strict, origin2, _, _, _ = make_edge(policy=CachePolicy(honor_request_no_cache=True))
        await strict.get(URL)
        r = await strict.get(URL, {"cache-control": "no-cache"})
        assert r.outcome is CacheOutcome.REVALIDATED
        assert len(origin2.requests) == 2

    run(main())


def test_only_if_cached() -> None:
    async def main() -> None:
        edge, origin, _, _, _ = make_edge()
        r = await edge.get(URL, {"cache-control": "only-if-cached"})
        assert r.status == 504
        assert not origin.requests

    run(main())


def test_authorization_is_passed() -> None:
    async def main() -> None:
        edge, origin, _, _, _ = make_edge("public, max-age=60")
        await edge.get(URL, {"authorization": "Bearer x"})
        await edge.get(URL, {"authorization": "Bearer x"})
        assert len(origin.requests) == 2

    run(main())


def test_default_grace_from_policy() -> None:
    async def main() -> None:
        policy = CachePolicy(default_stale_while_revalidate_s=30)
        edge, _, _, clock, _ = make_edge("max-age=10", policy=policy)
        await edge.get(URL)
        clock.advance(20)
        assert (await edge.get(URL)).outcome is CacheOutcome.STALE_WHILE_REVALIDATE
        await edge.aclose()

    run(main())


def test_purges_by_url_tag_prefix_and_all() -> None:
    async def main() -> None:
        edge, origin, versioned, _, metrics = make_edge()
        versioned.extra = {"surrogate-key": "product-1 images", "cache-tag": "catalog"}
        urls = [f"http://shop.test/img/{i}.png" for i in range(4)]
        for url in urls:
            await edge.get(url)
        n = len(origin.requests)
        assert (await edge.purge(PurgeSelector.urls("HTTP://SHOP.TEST:80/img/0.png"))).purged == 1
        assert (await edge.get(urls[0])).outcome is CacheOutcome.MISS
        assert (await edge.purge(PurgeSelector.tags("images"))).purged == 4
        await edge.get(urls[1])
        await edge.get("http://shop.test/css/site.css")
        assert (await edge.purge(PurgeSelector.prefixes("http://shop.test/img/"))).purged == 1
        assert (await edge.purge(PurgeSelector.everything())).purged == 1
        assert len(origin.requests) == n + 3
        assert (
            metrics.value("commercekit_cdn_purges_total", edge="edge", kind="tag", mode="hard") == 1
        )

    run(main())


def test_soft_purge_keeps_protecting_the_origin() -> None:
    async def main() -> None:
        edge, origin, versioned, _, _ = make_edge("max-age=600, stale-if-error=600")
        await edge.get(URL)
        await edge.purge(PurgeSelector.urls(URL), soft=True)
        versioned.version = 2
        assert (await edge.get(URL)).body.startswith(b"v2")
        await edge.purge(PurgeSelector.urls(URL), soft=True)
        versioned.fail = OriginError("down")
        stale = await edge.get(URL)
        assert stale.outcome is CacheOutcome.STALE_IF_ERROR
        assert stale.body.startswith(b"v2")
        assert len(origin.requests) == 3

    run(main())


def test_purge_during_a_fetch_is_visible_to_the_next_request() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        entered = asyncio.Event()
        version = [1]

        async def handler(request: Request) -> Response:
            seen = version[0]
            if seen == 1:
                entered.set()
                await gate.wait()
            return Response(200, Headers({"cache-control": "max-age=60"}), f"v{seen}".encode())

        edge, _, _, _, _ = make_edge(handler=handler)  # type: ignore[arg-type]
        early = asyncio.ensure_future(edge.get(URL))
        await entered.wait()
        version[0] = 2
        await edge.purge(PurgeSelector.urls(URL))
        late = await edge.get(URL)
        assert late.body == b"v2"
        gate.set()
        assert (await early).body == b"v1"
        assert (await edge.get(URL)).body == b"v2"

    run(main())
