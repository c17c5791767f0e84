"""``WsgiProxy``: the caching proxy as a WSGI application, driving the edge on its own loop.

An :class:`EdgeCache` lives on one event loop; WSGI servers call from many
threads. The adapter starts one loop thread on the first request (nothing
at import or construction), builds the edge there with *make_edge*, and
hands each request to it. Mounted under a prefix (``SCRIPT_NAME``), it asks
the origin for the path below it. A streamed body is returned as an iterable that
fetches one chunk at a time from the loop; if it breaks off, iterating
raises and the WSGI server aborts the connection.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any

from commercekit.cdn._edge._cache import EdgeCache
from commercekit.cdn._message._body import CHUNK_BYTES, BodyStream

from ._proxy import ProxyHandler

__all__ = ["WsgiProxy"]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


class WsgiProxy:
    """A WSGI app: ``WsgiProxy(lambda: EdgeCache(HttpOrigin(url)))``; call :meth:`close` at exit."""

    def __init__(
        self, make_edge: Callable[[], EdgeCache], *, timeout_s: float = 60.0, **options: Any
    ) -> None:
        self._make_edge = make_edge
        self._options = options
        self._timeout = timeout_s
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._handler: ProxyHandler | None = None

    def _start(self) -> tuple[asyncio.AbstractEventLoop, ProxyHandler]:
        with self._lock:
            if self._loop is None or self._handler is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="commercekit-cdn", daemon=True
                )
                thread.start()

                async def build() -> ProxyHandler:
                    return ProxyHandler(self._make_edge(), **self._options)

                self._handler = asyncio.run_coroutine_threadsafe(build(), loop).result(
                    self._timeout
                )
                self._loop, self._thread = loop, thread
            return self._loop, self._handler

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        loop, handler = self._start()
        headers = [
            (key[5:].replace("_", "-").lower(), value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        ]
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers.append((key.replace("_", "-").lower(), environ[key]))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(min(length, handler.max_body_bytes)) if length else b""
        target = _target_below_script(environ)
        future = asyncio.run_coroutine_threadsafe(
            handler.respond(environ["REQUEST_METHOD"], target, headers, body), loop
        )
        status, raw_headers, payload = future.result(self._timeout)
        start_response(
            f"{status} {_reason(status)}",
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw_headers],
        )
        if isinstance(payload, BodyStream):
            return _StreamedBody(payload, loop, self._timeout)
        if len(payload) > CHUNK_BYTES:
            return _pieces(payload)
        return [payload]

    def close(self) -> None:
        """Close the edge and stop the loop thread."""
        with self._lock:
            loop, handler, thread = self._loop, self._handler, self._thread
            self._loop = self._handler = self._thread = None
        if loop is None or handler is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(handler.edge.aclose(), loop).result(self._timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(self._timeout)
        loop.close()


def _pieces(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), CHUNK_BYTES):
        yield bytes(view[start : start + CHUNK_BYTES])


class _StreamedBody:
    """A WSGI response iterable pulling a :class:`BodyStream` from the edge's loop."""

    def __init__(self, body: BodyStream, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self._body = body
        self._loop = loop
        self._timeout = timeout_s
        self._chunks: AsyncIterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        while True:
            future = asyncio.run_coroutine_threadsafe(self._next(), self._loop)
            chunk = future.result(self._timeout)
            if chunk is None:
                return
            yield chunk

    async def _next(self) -> bytes | None:
        if self._chunks is None:
            self._chunks = aiter(self._body)
        return await anext(self._chunks, None)

    def close(self) -> None:
        """Called by the WSGI server when the response ends or the client goes."""
        if not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._body.aclose(), self._loop).result(self._timeout)


def _target_below_script(environ: dict[str, Any]) -> str:
    """The request target below the mount point ``SCRIPT_NAME``, with its query.

    ``RAW_URI`` (gunicorn) or ``REQUEST_URI`` keep the path as sent, prefix
    included; ``PATH_INFO`` is already below the prefix, but decoded.
    """
    script = str(environ.get("SCRIPT_NAME") or "").rstrip("/")
    raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "")
    if raw.startswith("/"):
        if script and (raw == script or raw.startswith((script + "/", script + "?"))):
            raw = raw[len(script) :]
        return raw if raw.startswith("/") else "/" + raw
    target = str(environ.get("PATH_INFO") or "/")
    if environ.get("QUERY_STRING"):
        target += "?" + str(environ["QUERY_STRING"])
    return target
