"""``asgi_app``: the caching proxy as an ASGI application (mount it in any ASGI server)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from commercekit.cdn._edge._cache import EdgeCache
from commercekit.cdn._message._body import BodyStream

from ._proxy import ProxyHandler

__all__ = ["asgi_app"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def asgi_app(edge: EdgeCache, **options: Any) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """Return an ASGI 3 app answering through *edge* (options as for :class:`ProxyHandler`).

    Mounted under a prefix (Starlette's ``Mount("/static", asgi_app(edge))``),
    it asks the origin for the path below the prefix (``scope["root_path"]``).
    A mounted app receives no lifespan events: close the edge in the parent
    app's lifespan (``await edge.aclose()``); mounted at the root, the app
    closes it on ``lifespan.shutdown`` itself.

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
        target = _target_below_root(scope)
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


def _target_below_root(scope: Scope) -> str:
    """The request's path (raw, as sent) without the mount prefix ``root_path``."""
    root: str = scope.get("root_path") or ""
    raw: bytes | None = scope.get("raw_path")
    target = raw.decode("latin-1") if raw is not None else scope["path"]
    # Servers differ on whether path and raw_path include root_path; strip it when they do.
    if root and (target == root or target.startswith(root.rstrip("/") + "/")):
        target = target[len(root.rstrip("/")) :]
    return target or "/"
