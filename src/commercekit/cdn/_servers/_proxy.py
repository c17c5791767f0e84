"""The caching reverse proxy's request handling, shared by the ASGI, WSGI and HTTP/1.1 front ends.

Turns a raw request into a :class:`Request` for the edge, and the edge's
response into what goes on the wire: ``Date`` when missing, ``Via`` added,
``Content-Length`` exact (for a streamed body of unknown length, none, so the
server frames it with chunked transfer coding), hop-by-hop fields dropped. A
streamed body is handed to the front end as a :class:`BodyStream`, which sends
each chunk as it comes. Every failure becomes
a status, never a crash: :class:`OriginError` is 502 (504 for
:class:`OriginTimeoutError`), and so is an unsafe request whose outcome is
unknown (:class:`OutcomeUnknownError`), each logged with its cause; bad input 400;
anything unexpected 500 (logged with its traceback).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from commercekit.cdn._edge._cache import EdgeCache
from commercekit.cdn._message._body import BodyStream
from commercekit.cdn._message._dates import format_http_date
from commercekit.cdn._message._headers import DEFAULT_MAX_HEADER_BYTES, HOP_BY_HOP, Headers
from commercekit.cdn._message._messages import CacheOutcome, Request, Response
from commercekit.errors import (
    InvalidInputError,
    MalformedHeaderError,
    OriginError,
    OriginTimeoutError,
    OutcomeUnknownError,
)

__all__ = ["ProxyHandler", "WireResponse"]

log = logging.getLogger("commercekit.cdn")

WireResponse = tuple[int, list[tuple[bytes, bytes]], bytes | BodyStream]
"""Status, header pairs and body (whole, or a stream to send chunk by chunk), ready to send.

A front end that gets a stream sends its chunks as they come and closes it;
if iterating it raises, the body is broken: abort the connection, never end
the response as if it were complete."""


def _error(status: int, text: str) -> Response:
    body = f"{status} {text}\n".encode()
    headers = Headers({"content-type": "text/plain; charset=utf-8", "cache-control": "no-store"})
    return Response(status, headers, body)


class ProxyHandler:
    """Answers raw HTTP requests through *edge*; *via* names this proxy in ``Via``."""

    def __init__(
        self,
        edge: EdgeCache,
        *,
        via: str = "1.1 commercekit",
        scheme: str = "http",
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_body_bytes: int = 1024 * 1024,
    ) -> None:
        self._edge = edge
        self._via = via
        self._scheme = scheme
        self._max_header = max_header_bytes
        self.max_body_bytes = max_body_bytes

    @property
    def edge(self) -> EdgeCache:
        """The edge behind this proxy."""
        return self._edge

    @property
    def via(self) -> str:
        """What this proxy adds to ``Via``."""
        return self._via

    def build_request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[bytes | str, bytes | str]],
        body: bytes = b"",
    ) -> Request:
        """Turn a request line and headers into an edge :class:`Request` (may raise 400s)."""
        parsed = Headers.from_wire(headers, max_bytes=self._max_header)
        host = parsed.get("host")
        if not host or any(c in host for c in "/\\@ "):
            raise MalformedHeaderError("a request needs one valid Host header")
        if not target.startswith("/"):
            if target.startswith(("http://", "https://")):
                target = "/" + target.split("/", 3)[-1] if target.count("/") >= 3 else "/"
            else:
                raise MalformedHeaderError(f"request target {target[:80]!r} is not a path")
        return Request(method.upper(), f"{self._scheme}://{host.lower()}{target}", parsed, body)

    async def respond(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[bytes | str, bytes | str]],
        body: bytes = b"",
    ) -> WireResponse:
        """Answer one request; never raises."""
        try:
            request = self.build_request(method, target, headers, body)
        except InvalidInputError as exc:
            return self._wire(method, _error(400, str(exc)))
        try:
            response = await self._edge.handle(request)
        except (OriginError, OutcomeUnknownError) as exc:
            status = 504 if isinstance(exc, OriginTimeoutError) else 502
            log.warning("%d for %s %s: %s", status, method, request.url[:200], exc)
            return self._wire(method, _error(status, "origin unavailable"))
        except InvalidInputError as exc:
            return self._wire(method, _error(400, str(exc)))
        except Exception:
            log.exception("the edge failed on %s %s", method, target[:200])
            return self._wire(method, _error(500, "internal error"))
        if response.status in (502, 504):
            cause = (
                "only-if-cached, and nothing usable is stored"
                if response.outcome is CacheOutcome.MISS and "only-if-cached" in _cc(request)
                else f"the origin answered {response.status}"
            )
            log.warning("%d for %s %s: %s", response.status, method, request.url[:200], cause)
        if response.stream is not None and _bodiless(method, response.status):
            await response.stream.aclose()
            response = Response(response.status, response.headers, b"", response.outcome)
        return self._wire(method, response)

    def _wire(self, method: str, response: Response) -> WireResponse:
        headers = response.headers.without(*HOP_BY_HOP)
        if "date" not in headers:
            headers = headers.extended(("date", format_http_date(time.time())))
        via = headers.joined("via")
        headers = headers.set("via", f"{via}, {self._via}" if via else self._via)
        status = response.status
        if response.stream is not None:
            length = response.stream.length
            if length is None:
                headers = headers.without("content-length")
            else:
                headers = headers.set("content-length", str(length))
            return status, headers.raw(), response.stream
        body = response.body
        if _bodiless(method, status):
            body = b""
            if status in (204, 304):
                headers = headers.without("content-length")
        else:
            headers = headers.set("content-length", str(len(body)))
        return status, headers.raw(), body


def _cc(request: Request) -> str:
    return (request.headers.joined("cache-control") or "").lower()


def _bodiless(method: str, status: int) -> bool:
    return method.upper() == "HEAD" or status in (204, 304) or 100 <= status < 200
