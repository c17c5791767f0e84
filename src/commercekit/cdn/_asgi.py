"""``asgi_app``: the caching proxy as an ASGI application (mount it in any ASGI server)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._body import BodyStream
from ._edge import EdgeCache
from ._proxy import ProxyHandler

__all__ = ["asgi_app"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def asgi_app(edge: EdgeCache, **options: Any) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """Return an ASGI 3 app answering through *edge* (options as for :class:`ProxyHandler`).

    A streamed body is sent chunk by chunk (``more_body``); if it breaks
    off, the app raises, and the ASGI server aborts the response.
    """
    handler = ProxyHandler(edge, **options)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await edge.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > handler.max_body_bytes:
                await send({"type": "http.response.start", "status": 413, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            if not message.get("more_body"):
                break
        path = scope.get("raw_path") or scope["path"].encode()
        target = path.decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        status, headers, payload = await handler.respond(
            scope["method"], target, scope["headers"], bytes(body)
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if isinstance(payload, BodyStream):
            try:
                async for chunk in payload:  # an error here propagates: the server aborts
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            finally:
                await payload.aclose()
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.body", "body": payload})

    return app
