"""Request coalescing: one origin request per key, results and errors shared at once."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from commercekit.cdn import (
    CacheOutcome,
    Headers,
    OriginError,
    PurgeSelector,
    Request,
    Response,
)
from commercekit.cdn._edge._coalesce import Coalescer

from ._helpers import make_edge

URL = "http://shop.test/hot.jpg"


def gated(response: Response | None, error: BaseException | None = None):  # type: ignore[no-untyped-def]
    gate = asyncio.Event()

    async def handler(request: Request) -> Response:
        await gate.wait()
        if error is not None:
            raise error
        assert response is not None
        return response

    return gate, handler


def test_a_thousand_misses_make_one_origin_request() -> None:
    async def main() -> None:
        gate, handler = gated(Response(200, Headers({"cache-control": "max-age=60"}), b"x"))
        edge, origin, _, _, metrics = make_edge(handler=handler)
        waiters = [asyncio.ensure_future(edge.get(URL)) for _ in range(1000)]
        await asyncio.sleep(0)
        gate.set()
        responses = await asyncio.gather(*waiters)
        assert len(origin.requests) == 1
        assert all(r.body == b"x" and r.outcome is CacheOutcome.MISS for r in responses)
        assert metrics.value("commercekit_cdn_coalesced_waiters_total", edge="edge") == 999

    asyncio.run(main())


def test_every_waiter_gets_the_error_together() -> None:
    async def main() -> None:
        gate, handler = gated(None, OriginError("origin down"))
        edge, origin, _, _, _ = make_edge(handler=handler)
        waiters = [asyncio.ensure_future(edge.get(URL)) for _ in range(200)]
        await asyncio.sleep(0)
        gate.set()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert len(origin.requests) == 1
        assert all(isinstance(r, OriginError) for r in results)

    asyncio.run(main())


def test_private_responses_are_not_shared() -> None:
    async def main() -> None:
        calls = []

        async def handler(request: Request) -> Response:
            calls.append(1)
            mine = len(calls)
            await asyncio.sleep(0)
            return Response(200, Headers({"cache-control": "private"}), str(mine).encode())

        edge, origin, _, _, _ = make_edge(handler=handler)  # type: ignore[arg-type]
        responses = await asyncio.gather(*(edge.get(URL) for _ in range(5)))
        assert len(origin.requests) == 5
        assert len({r.body for r in responses}) == 5

    asyncio.run(main())


def test_other_vary_variants_are_not_shared() -> None:
    async def main() -> None:
        gate = asyncio.Event()

        async def handler(request: Request) -> Response:
            await gate.wait()
            lang = request.headers.get("accept-language") or "-"
            headers = Headers({"cache-control": "max-age=60", "vary": "accept-language"})
            return Response(200, headers, lang.encode())

        edge, origin, _, _, _ = make_edge(handler=handler)  # type: ignore[arg-type]
        langs = ["de", "fr", "de", "fr", "en"]
        tasks = [asyncio.ensure_future(edge.get(URL, {"accept-language": x})) for x in langs]
        await asyncio.sleep(0)
        gate.set()
        responses = await asyncio.gather(*tasks)
        assert [r.body.decode() for r in responses] == langs
        assert len(origin.requests) == 3

    asyncio.run(main())


def test_a_cancelled_waiter_does_not_cancel_the_flight() -> None:
    async def main() -> None:
        gate = asyncio.Event()

        async def work() -> int:
            await gate.wait()
            return 7

        flights: Coalescer[int] = Coalescer()
        first = asyncio.ensure_future(flights.run("k", work))
        second = asyncio.ensure_future(flights.run("k", work))
        await asyncio.sleep(0)
        first.cancel()
        gate.set()
        assert await second == 7

    asyncio.run(main())


@settings(max_examples=30, deadline=None)
@given(
    waiters=st.integers(1, 40),
    fail=st.booleans(),
    start_delays=st.lists(st.integers(0, 3), min_size=40, max_size=40),
)
def test_coalescing_never_loses_an_error(waiters: int, fail: bool, start_delays: list[int]) -> None:
    """Whoever joins a failing flight gets that error; nobody gets a result it did not produce."""

    async def main() -> None:
        gate = asyncio.Event()
        calls = 0

        async def work() -> str:
            nonlocal calls
            calls += 1
            await gate.wait()
            if fail:
                raise OriginError("boom")
            return "ok"

        flights: Coalescer[str] = Coalescer()

        async def waiter(delay: int) -> str | BaseException:
            for _ in range(delay):
                await asyncio.sleep(0)
            try:
                return await flights.run("k", work)
            except OriginError as exc:
                return exc

        tasks = [asyncio.ensure_future(waiter(d)) for d in start_delays[:waiters]]
        for _ in range(5):
            await asyncio.sleep(0)
        gate.set()
        results = await asyncio.gather(*tasks)
        assert calls == 1
        if fail:
            assert all(isinstance(r, OriginError) for r in results)
            assert len({id(r) for r in results}) == 1  # the very same error, at once
        else:
            assert results == ["ok"] * waiters

    asyncio.run(main())


ops = st.lists(
    st.tuples(
        st.sampled_from(["get", "bump", "purge-url", "purge-tag", "soft"]), st.integers(0, 2)
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_purge_then_get_never_returns_purged_content(steps: list[tuple[str, int]]) -> None:
    """After a purge of a URL at version v, a get returns version >= v (hard purge)."""

    async def main() -> None:
        versions = dict.fromkeys(range(3), 1)
        floor = dict.fromkeys(range(3), 1)

        def handler(request: Request) -> Response:
            index = int(request.url.rsplit("/", 1)[-1])
            return Response(
                200,
                Headers({"cache-control": "max-age=600", "surrogate-key": "all"}),
                str(versions[index]).encode(),
            )

        edge, _, _, clock, _ = make_edge(handler=handler)
        for op, index in steps:
            url = f"http://shop.test/p/{index}"
            if op == "get":
                body = (await edge.get(url)).body
                assert int(body) >= floor[index]
            elif op == "bump":
                versions[index] += 1
            elif op == "purge-url":
                await edge.purge(PurgeSelector.urls(url))
                floor[index] = versions[index]
            elif op == "purge-tag":
                await edge.purge(PurgeSelector.tags("all"))
                floor = dict(versions)
            else:
                await edge.purge(PurgeSelector.urls(url), soft=True)
                floor[index] = versions[index]  # no stale window: soft acts as hard
            clock.advance(1)

    asyncio.run(main())
