"""The proxy mounted under a prefix: ASGI (Starlette) honours root_path, WSGI SCRIPT_NAME."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from wsgiref.util import setup_testing_defaults

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from commercekit.cdn import EdgeCache, HttpOrigin, WsgiProxy, asgi_app

from ._loopback import Answer, LoopbackServer, Seen


def origin(seen: Seen) -> Answer:
    return 200, {"cache-control": "max-age=60"}, f"file {seen.path}".encode()


def test_a_starlette_mount_asks_the_origin_for_the_path_below_the_prefix() -> None:
    async def main(url: str) -> None:
        edge = EdgeCache(HttpOrigin(url))

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            yield
            await edge.aclose()  # a mounted app gets no lifespan events: close it here

        app = Starlette(routes=[Mount("/static", app=asgi_app(edge))], lifespan=lifespan)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            first = await client.get("/static/img/a.png?v=2")
            assert (first.status_code, first.content) == (200, b"file /img/a.png?v=2")
            again = await client.get("/static/img/a.png?v=2")
            assert "hit" in again.headers["cache-status"]
            assert (await client.get("/static/")).content == b"file /"
        await edge.aclose()

    with LoopbackServer(origin) as server:
        asyncio.run(main(server.url))
        assert [s.path for s in server.seen] == ["/img/a.png?v=2", "/"]


def test_wsgi_under_a_script_name_asks_for_path_info() -> None:
    with LoopbackServer(origin) as server:
        app = WsgiProxy(lambda: EdgeCache(HttpOrigin(server.url)))
        try:
            for raw_uri in ("/static/w.png?x=1", None):  # gunicorn sets RAW_URI, others do not
                environ: dict[str, object] = {
                    "SCRIPT_NAME": "/static",
                    "PATH_INFO": "/w.png",
                    "QUERY_STRING": "x=1",
                    "HTTP_HOST": "shop.test",
                }
                if raw_uri:
                    environ["RAW_URI"] = raw_uri
                setup_testing_defaults(environ)
                environ["wsgi.input"] = io.BytesIO()
                body = b"".join(app(environ, lambda *_: None))
                assert body == b"file /w.png?x=1"
        finally:
            app.close()
        assert [s.path for s in server.seen] == ["/w.png?x=1"]
