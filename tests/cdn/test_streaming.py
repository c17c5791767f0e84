"""Large bodies stream: origin to clients and into the store at once, never held twice.

A real loopback origin serves bodies it never holds (``StreamingServer``), the
edge's HTTP/1.1 proxy serves them to an httpx client that hashes as it reads,
and tracemalloc's peak measures what the whole process held meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from commercekit.cdn import (
    BodyStream,
    CacheOutcome,
    EdgeCache,
    Headers,
    HttpOrigin,
    MemoryStore,
    MockOrigin,
    OriginError,
    ProxyHandler,
    Response,
    serve,
)

from ._loopback import PATTERN, StreamingServer, pattern_bytes

MiB = 1024 * 1024
BIG = 50 * MiB


def digest(size: int) -> str:
    h = hashlib.sha256()
    full, rest = divmod(size, len(PATTERN))
    for _ in range(full):
        h.update(PATTERN)
    h.update(PATTERN[:rest])
    return h.hexdigest()


@asynccontextmanager
async def proxy(edge: EdgeCache) -> AsyncIterator[httpx.AsyncClient]:
    server = await serve(ProxyHandler(edge), port=0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.close()
        await server.wait_closed()
        await edge.aclose()


async def fetch(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None
) -> tuple[int, str, int, httpx.Headers]:
    h = hashlib.sha256()
    size = 0
    async with client.stream("GET", path, headers=headers) as response:
        async for chunk in response.aiter_raw():
            h.update(chunk)
            size += len(chunk)
    return response.status_code, h.hexdigest(), size, response.headers


def warm_up(origin_url: str) -> None:
    """Stream one body through a proxy first, so first-use imports and caches are not measured."""

    async def run() -> None:
        async with proxy(EdgeCache(HttpOrigin(origin_url), MemoryStore(MiB))) as client:
            await fetch(client, f"/{MiB}?chunked")

    asyncio.run(run())


def peak_while(run: Callable[[], Awaitable[None]]) -> int:
    """Run *run* in a fresh loop and return tracemalloc's peak above the start, in bytes."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        asyncio.run(run())  # type: ignore[arg-type]
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_a_50_mib_body_streams_through_the_proxy_into_the_store_held_once() -> None:
    with StreamingServer() as origin:
        store = MemoryStore(256 * MiB, max_entry_bytes=64 * MiB)

        async def run() -> None:
            async with proxy(EdgeCache(HttpOrigin(origin.url), store)) as client:
                status, got, size, headers = await fetch(client, f"/{BIG}")
                assert (status, size, got) == (200, BIG, digest(BIG))
                assert headers["content-length"] == str(BIG)
                await asyncio.sleep(0)
                status, got, size, headers = await fetch(client, f"/{BIG}")
                assert (status, got) == (200, digest(BIG))
                assert "hit" in headers["cache-status"]
                # a Range is answered from the stored full body
                status, _, _, headers = await fetch(client, f"/{BIG}", {"range": "bytes=1000-1999"})
                assert status == 206
                assert headers["content-range"] == f"bytes 1000-1999/{BIG}"
                part = await client.get(f"/{BIG}", headers={"range": "bytes=1000-1999"})
                assert part.content == pattern_bytes(1000, 1999)
                status, got, size, _ = await fetch(client, f"/{BIG}", {"range": "bytes=0-"})
                assert (status, size, got) == (206, BIG, digest(BIG))

        warm_up(origin.url)
        peak = peak_while(run)
        print(f"stored 50 MiB: tracemalloc peak {peak / MiB:.1f} MiB")
        assert peak < 1.25 * BIG  # the stored copy, and pieces of 64 KiB besides
        assert origin.requests == 2  # the warm-up, then one for three requests
        assert len(store) == 1


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_store_limit_passes_through_in_a_window(chunked: bool) -> None:
    with StreamingServer() as origin:
        store = MemoryStore(64 * MiB, max_entry_bytes=8 * MiB)
        path = f"/{BIG}" + ("?chunked" if chunked else "")

        async def run() -> None:
            async with proxy(EdgeCache(HttpOrigin(origin.url), store)) as client:
                status, got, size, headers = await fetch(client, path)
                assert (status, size, got) == (200, BIG, digest(BIG))
                if chunked:
                    assert headers["transfer-encoding"] == "chunked"
                    assert "content-length" not in headers

        warm_up(origin.url)
        peak = peak_while(run)
        print(f"pass-through 50 MiB (chunked={chunked}): tracemalloc peak {peak / MiB:.2f} MiB")
        # chunked: the first 8 MiB are spooled before the body outgrows the store
        assert peak < (10 * MiB if chunked else 24 * 64 * 1024)  # 1.5 MiB: 24 chunks
        assert len(store) == 0


@pytest.mark.parametrize("chunked", [False, True])
def test_an_origin_failure_mid_body_stores_nothing_and_breaks_the_response(chunked: bool) -> None:
    with StreamingServer() as origin:
        store = MemoryStore(256 * MiB, max_entry_bytes=64 * MiB)
        path = f"/{8 * MiB}?fail={3 * MiB}" + ("&chunked" if chunked else "")

        async def run() -> None:
            async with proxy(EdgeCache(HttpOrigin(origin.url), store)) as client:
                for _ in range(2):
                    with pytest.raises(httpx.HTTPError):
                        await fetch(client, path)
                    await asyncio.sleep(0.05)
                    assert len(store) == 0

        asyncio.run(run())
        assert origin.requests == 2  # nothing was stored, so the second request refetched


def test_coalesced_waiters_read_the_same_body_as_it_arrives() -> None:
    with StreamingServer() as origin:
        size = 4 * MiB

        async def run() -> None:
            edge = EdgeCache(HttpOrigin(origin.url), MemoryStore(64 * MiB))
            url = f"http://shop.test/{size}?slow"
            first = await asyncio.gather(*(edge.get(url) for _ in range(5)))
            assert all(r.stream is not None for r in first)
            late_task = asyncio.ensure_future(_late(edge, url))
            bodies = await asyncio.gather(*(r.read() for r in first))
            late = await late_task
            assert {hashlib.sha256(b).hexdigest() for b in [*bodies, late]} == {digest(size)}
            hit = await edge.get(url)
            assert hit.outcome is CacheOutcome.HIT
            assert hashlib.sha256(hit.body).hexdigest() == digest(size)
            await edge.aclose()

        asyncio.run(run())
        assert origin.requests == 1


async def _late(edge: EdgeCache, url: str) -> bytes:
    await asyncio.sleep(0.1)  # joins while the body is half in: starts from byte 0
    response = await edge.get(url)
    return await response.read()


def test_coalesced_waiters_share_a_body_too_big_to_store() -> None:
    with StreamingServer() as origin:
        size = 4 * MiB

        async def run() -> None:
            edge = EdgeCache(HttpOrigin(origin.url), MemoryStore(8 * MiB, max_entry_bytes=MiB))
            url = f"http://shop.test/{size}"
            responses = await asyncio.gather(*(edge.get(url) for _ in range(4)))
            bodies = await asyncio.gather(*(r.read() for r in responses))
            assert {hashlib.sha256(b).hexdigest() for b in bodies} == {digest(size)}
            await edge.aclose()

        asyncio.run(run())
        assert origin.requests == 1


def test_a_short_stream_is_an_error_never_stored() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"x" * 1000

    def handler(request: object) -> Response:
        stream = BodyStream(chunks(), length=5000)
        return Response(200, Headers({"cache-control": "max-age=60"}), stream=stream)

    async def run() -> None:
        store = MemoryStore(MiB)
        edge = EdgeCache(MockOrigin(handler), store)  # type: ignore[arg-type]
        response = await edge.get("http://shop.test/a")
        with pytest.raises(OriginError):
            await response.read()
        await asyncio.sleep(0)
        assert len(store) == 0
        await edge.aclose()

    asyncio.run(run())


def test_a_client_that_goes_away_does_not_stop_the_store() -> None:
    with StreamingServer() as origin:
        size = 2 * MiB

        async def run() -> None:
            store = MemoryStore(64 * MiB)
            edge = EdgeCache(HttpOrigin(origin.url), store)
            url = f"http://shop.test/{size}"
            response = await edge.get(url)
            await response.aclose()
            for _ in range(100):
                if len(store):
                    break
                await asyncio.sleep(0.02)
            hit = await edge.get(url)
            assert hit.outcome is CacheOutcome.HIT
            assert len(hit.body) == size
            await edge.aclose()

        asyncio.run(run())
        assert origin.requests == 1


def test_asgi_and_wsgi_send_a_streamed_body_in_chunks() -> None:
    import io
    from wsgiref.util import setup_testing_defaults

    from commercekit.cdn import WsgiProxy, asgi_app

    size = 3 * MiB
    with StreamingServer("no-store") as origin:

        async def run() -> None:
            edge = EdgeCache(HttpOrigin(origin.url))
            transport = httpx.ASGITransport(app=asgi_app(edge))
            async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
                status, got, length, _ = await fetch(client, f"/{size}")
                assert (status, length, got) == (200, size, digest(size))
            await edge.aclose()

        asyncio.run(run())
        app = WsgiProxy(lambda: EdgeCache(HttpOrigin(origin.url)))
        try:
            environ: dict[str, object] = {"PATH_INFO": f"/{size}", "HTTP_HOST": "shop.test"}
            setup_testing_defaults(environ)
            environ["wsgi.input"] = io.BytesIO()
            captured: list[object] = []
            body = app(environ, lambda s, h, c=captured: c.append((s, h)))
            pieces = list(body)
            body.close()  # type: ignore[attr-defined]
            assert max(len(p) for p in pieces) <= 64 * 1024
            assert hashlib.sha256(b"".join(pieces)).hexdigest() == digest(size)
            assert ("content-length", str(size)) in captured[0][1]  # type: ignore[index]
        finally:
            app.close()
