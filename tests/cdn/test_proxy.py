"""The caching reverse proxy over real loopback sockets: HTTP/1.1 server, ASGI, WSGI, CLI."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import subprocess
import sys
import threading
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import httpx
import pytest

from commercekit.cdn import (
    DirectoryOrigin,
    EdgeCache,
    HttpOrigin,
    ProxyHandler,
    Request,
    WsgiProxy,
    asgi_app,
    serve,
)
from commercekit.errors import OriginError, OriginTimeoutError

from ._loopback import Answer, LoopbackServer, RawOrigin, Seen


def origin_handler(seen: Seen) -> Answer:
    if seen.path.startswith("/boom"):
        return 500, {"content-type": "text/plain"}, b"oops"
    if seen.path.startswith("/gateway"):
        return 502, {"content-type": "text/plain"}, b"upstream of the origin is down"
    if seen.headers.get("if-none-match") == '"e1"':
        return 304, {"etag": '"e1"', "cache-control": "max-age=60"}, b""
    body = f"image {seen.path}".encode()
    return 200, {"cache-control": "max-age=60", "etag": '"e1"', "content-type": "image/png"}, body


def test_http11_server_end_to_end() -> None:
    async def main(origin_url: str) -> None:
        edge = EdgeCache(HttpOrigin(origin_url))
        server = await serve(ProxyHandler(edge), port=0)
        port = server.sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as client:
            first = await client.get("/img/a.png?x=1")
            assert first.status_code == 200
            assert first.content == b"image /img/a.png?x=1"
            assert first.headers["via"] == "1.1 commercekit"
            assert "date" in first.headers
            second = await client.get("/img/a.png?x=1")
            assert "hit" in second.headers["cache-status"]
            assert second.headers["age"] == "0"
            head = await client.head("/img/a.png?x=1")
            assert head.status_code == 200
            assert head.content == b""
            assert head.headers["content-length"] == str(len(first.content))
            nm = await client.get("/img/a.png?x=1", headers={"if-none-match": '"e1"'})
            assert nm.status_code == 304
            part = await client.get("/img/a.png?x=1", headers={"range": "bytes=0-4"})
            assert part.status_code == 206
            assert part.content == b"image"
            boom = await client.get("/boom")
            assert boom.status_code == 500
        # protocol garbage and huge headers get a 4xx, and the server lives on
        for raw in (b"NOT HTTP\r\n\r\n", b"GET / HTTP/1.1\r\nhost: x\r\nx: " + b"a" * 100_000):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 5)
            assert line.split()[1] in (b"400", b"431")
            writer.close()
            await writer.wait_closed()
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/img/a.png?x=1")).status_code == 200
        server.close()
        await server.wait_closed()
        await edge.aclose()

    with LoopbackServer(origin_handler) as origin:
        asyncio.run(main(origin.url))
        assert len([s for s in origin.seen if s.path == "/img/a.png?x=1"]) == 1


def test_origin_down_is_502() -> None:
    async def main() -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        handler = ProxyHandler(EdgeCache(HttpOrigin(f"http://127.0.0.1:{dead}", timeout_s=2)))
        status, _, body = await handler.respond("GET", "/x", [(b"host", b"shop.test")])
        assert status == 502
        assert b"origin" in body
        status, _, _ = await handler.respond("GET", "/x", [])
        assert status == 400
        await handler.edge.aclose()

    asyncio.run(main())


def test_asgi_app() -> None:
    async def main(origin_url: str) -> None:
        edge = EdgeCache(HttpOrigin(origin_url))
        app = asgi_app(edge)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            assert (await client.get("/a.png")).content == b"image /a.png"
            again = await client.get("/a.png")
            assert "hit" in again.headers["cache-status"]
        await edge.aclose()

    with LoopbackServer(origin_handler) as origin:
        asyncio.run(main(origin.url))
        assert len(origin.seen) == 1


def test_wsgi_app() -> None:
    with LoopbackServer(origin_handler) as origin:
        app = WsgiProxy(lambda: EdgeCache(HttpOrigin(origin.url)))
        try:
            for _ in range(3):
                environ: dict[str, object] = {"PATH_INFO": "/w.png", "HTTP_HOST": "shop.test"}
                setup_testing_defaults(environ)
                environ["wsgi.input"] = io.BytesIO()
                captured: list[object] = []
                body = b"".join(app(environ, lambda s, h, c=captured: c.append((s, h))))
                assert body == b"image /w.png"
                assert captured[0][0] == "200 OK"  # type: ignore[index]
        finally:
            app.close()
        assert len(origin.seen) == 1


def test_directory_origin(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"\x89PNG")
    (tmp_path.parent / "secret.txt").write_text("no")

    async def main() -> None:
        origin = DirectoryOrigin(tmp_path)
        ok = await origin.fetch(Request("GET", "http://s/img/a.png"))
        assert ok.status == 200
        assert ok.body == b"\x89PNG"
        assert ok.headers.get("content-type") == "image/png"
        etag = ok.headers.get("etag")
        assert etag
        nm = await origin.fetch(Request("GET", "http://s/img/a.png", {"if-none-match": etag}))
        assert nm.status == 304
        for bad in ("/../secret.txt", "/img/%2e%2e/%2e%2e/secret.txt", "/img", "/nope", "/a%00b"):
            assert (await origin.fetch(Request("GET", "http://s" + bad))).status == 404
        edge = EdgeCache(origin)
        assert (await edge.get("http://s/img/a.png")).body == b"\x89PNG"
        await edge.aclose()

    asyncio.run(main())


def test_cli_serve() -> None:
    command = [sys.executable, "-m", "commercekit.cdn", "serve", "--port", "0", "--origin"]
    with LoopbackServer(origin_handler) as origin:
        with subprocess.Popen([*command, origin.url], stdout=subprocess.PIPE, text=True) as proc:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            url = line.split()[2]
            try:
                assert httpx.get(url + "/c.png", timeout=10).content == b"image /c.png"
                assert "hit" in httpx.get(url + "/c.png", timeout=10).headers["cache-status"]
            finally:
                proc.terminate()
            assert proc.wait(10) == 0
        assert len(origin.seen) == 1


@pytest.mark.parametrize("target", ["http://shop.test/abs", "*"])
def test_odd_targets(target: str) -> None:
    handler = ProxyHandler(EdgeCache(HttpOrigin("http://127.0.0.1:9")))
    if target == "*":
        with pytest.raises(ValueError, match="not a path"):
            handler.build_request("OPTIONS", target, [("host", "shop.test")])
    else:
        assert handler.build_request("GET", target, [("host", "shop.test")]).url == (
            "http://shop.test/abs"
        )


def _ok(body: bytes, *, length: int | None = None) -> bytes:
    head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body) if length is None else length}\r\n"
    return head.encode() + b"cache-control: no-store\r\n\r\n" + body


def test_a_reused_connection_the_origin_closed_is_retried_once_on_a_fresh_one() -> None:
    # each connection answers its first request, then closes on the second without answering
    def answer(_: int, nth: int, request: bytes) -> bytes | None:
        return _ok(request.split(b" ")[1]) if nth == 1 else None

    async def main(url: str) -> None:
        handler = ProxyHandler(EdgeCache(HttpOrigin(url)))
        for path in ("/a", "/b", "/c"):
            status, _, body = await handler.respond("GET", path, [(b"host", b"shop.test")])
            assert (status, body) == (200, path.encode())
        status, _, _ = await handler.respond("POST", "/cart", [(b"host", b"shop.test")])
        assert status == 502  # not idempotent: never sent twice
        await handler.edge.aclose()

    with RawOrigin(answer) as origin:
        asyncio.run(main(origin.url))


def test_a_body_longer_than_its_content_length_does_not_poison_the_pool() -> None:
    def answer(_: int, nth: int, request: bytes) -> bytes | None:
        path = request.split(b" ")[1]
        if path == b"/long":
            return _ok(b"helloHTTP/1.1 999 Garbage\r\n\r\n", length=5)
        return _ok(path)

    async def main(url: str) -> None:
        handler = ProxyHandler(EdgeCache(HttpOrigin(url)))
        status, _, body = await handler.respond("GET", "/long", [(b"host", b"shop.test")])
        assert (status, body) == (200, b"hello")
        for method in ("POST", "GET"):  # a POST is never retried: it needs a clean connection
            status, _, body = await handler.respond(method, "/next", [(b"host", b"shop.test")])
            assert (status, body) == (200, b"/next")
        await handler.edge.aclose()

    with RawOrigin(answer) as origin:
        asyncio.run(main(origin.url))


def test_timeouts_are_504_and_every_502_504_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    given_up = threading.Event()  # the origin answers only once every client gave up

    def answer(_: int, nth: int, request: bytes) -> bytes | None:
        given_up.wait(10)
        return _ok(b"late")

    async def main(url: str) -> None:
        slow_client = ProxyHandler(EdgeCache(HttpOrigin(url, timeout_s=0.2)))
        with pytest.raises(OriginTimeoutError):
            await HttpOrigin(url, timeout_s=0.2).fetch(Request("GET", url + "/x"))
        status, _, _ = await slow_client.respond("GET", "/httpx", [(b"host", b"shop.test")])
        assert status == 504
        slow_edge = ProxyHandler(EdgeCache(HttpOrigin(url), origin_timeout_s=0.2))
        status, _, _ = await slow_edge.respond("GET", "/edge", [(b"host", b"shop.test")])
        assert status == 504
        await slow_client.edge.aclose()
        await slow_edge.edge.aclose()

    with caplog.at_level(logging.WARNING, logger="commercekit.cdn"), RawOrigin(answer) as origin:
        try:
            asyncio.run(main(origin.url))
        finally:
            given_up.set()
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("504 for GET http://shop.test/httpx") for m in logged), logged
    assert any(m.startswith("504 for GET http://shop.test/edge: origin did not") for m in logged)
    assert issubclass(OriginTimeoutError, TimeoutError)
    assert issubclass(OriginTimeoutError, OriginError)


def test_origin_down_502_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="commercekit.cdn"):
        test_origin_down_is_502()
    assert any(r.getMessage().startswith("502 for GET http://shop.test/x") for r in caplog.records)


def test_502_and_504_passed_on_or_made_by_the_edge_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main(url: str) -> None:
        handler = ProxyHandler(EdgeCache(HttpOrigin(url)))
        host = [(b"host", b"shop.test")]
        assert (await handler.respond("GET", "/gateway", host))[0] == 502
        only = [*host, (b"cache-control", b"only-if-cached")]
        assert (await handler.respond("GET", "/never-fetched", only))[0] == 504
        await handler.edge.aclose()

    level = caplog.at_level(logging.WARNING, logger="commercekit.cdn")
    with level, LoopbackServer(origin_handler) as origin:
        asyncio.run(main(origin.url))
    logged = [r.getMessage() for r in caplog.records]
    assert "502 for GET http://shop.test/gateway: the origin answered 502" in logged
    assert any(m.startswith("504 for GET http://shop.test/never-fetched: only-if") for m in logged)
