"""``HttpOrigin``: forward to an HTTP server through ``httpx`` (the ``[cdn]`` extra).

Pooled keep-alive connections fail in two ways this module handles. An
origin may close an idle connection just as a request is sent on it: the
request was never answered, so for an idempotent method it is sent once
more, on a fresh connection that is not pooled. An origin may send more body
bytes than its ``Content-Length``: the extra bytes would be read as the start
of the next response on that connection, so after each response every idle
pooled connection holding unread bytes is closed.

A request that fails before it reaches the origin (no connection) is an
:class:`OriginError`, whatever its method: nothing happened, so it is safe to
retry. A non-idempotent request (``POST``, ``PATCH``) that fails after it was
sent and before an answer came is :class:`OutcomeUnknownError`: the origin
may have acted on it. Messages and the repr name the origin without the
user and password its URL may carry.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from commercekit._closing import AsyncClosing
from commercekit._extras import require
from commercekit._loop import LoopPool, client_pool
from commercekit.cdn._message._body import STREAM_THRESHOLD_BYTES, BodyStream
from commercekit.cdn._message._headers import HOP_BY_HOP, Headers, without_hop_by_hop
from commercekit.cdn._message._messages import Request, Response
from commercekit.errors import (
    ConfigurationError,
    OriginError,
    OriginTimeoutError,
    OutcomeUnknownError,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpOrigin"]

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
"""Methods safe to send again when a reused connection broke before any answer (RFC 9110 9.2.2)."""


class HttpOrigin(AsyncClosing):
    """An :class:`~commercekit.cdn.Origin` that sends each request to *base_url*.

    The request's path and query are kept; scheme and host become the
    origin's (``Host`` included). A body up to *stream_threshold_bytes*
    comes back whole in ``Response.body``; a larger one (or one still
    arriving past that) comes back as a :class:`BodyStream` in
    ``Response.stream``, read from the connection as the reader asks, never
    joined. A body over *max_body_bytes* (None: no bound), a broken
    connection raises :class:`OriginError`, a timeout
    :class:`~commercekit.errors.OriginTimeoutError` (while streaming: from
    the stream). An HTTP error status is returned as a response. Pass
    *client* to share or tune the connection pool (it stays the caller's to
    close); otherwise one is made on the event loop of the first call and
    belongs to it: ``await origin.aclose()`` or ``async with`` closes it, and
    so does that loop as it shuts down (``asyncio.run()`` does); a call on a
    later loop makes a new one.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        max_body_bytes: int | None = None,
        stream_threshold_bytes: int = STREAM_THRESHOLD_BYTES,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"origin URL {base_url!r} must be http(s)://host[:port]")
        if client is None:
            require("httpx", extra="cdn", feature="HttpOrigin")
        self._base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        host = parts.netloc.rpartition("@")[2]  # user:password@ stays out of messages
        self._shown = f"{parts.scheme}://{host}{parts.path.rstrip('/')}"
        self._max_body = max_body_bytes
        self._threshold = stream_threshold_bytes
        self._given = client  # the caller's: used, never closed here
        # Made on the event loop of the first call, and closed with it (or by aclose()).
        self._pooled: LoopPool[httpx.AsyncClient] = client_pool(
            "HttpOrigin", functools.partial(_new_client, timeout_s, pooled=True)
        )
        self._fresh: LoopPool[httpx.AsyncClient] = client_pool(
            "HttpOrigin", functools.partial(_new_client, timeout_s, pooled=False)
        )

    async def _http(self) -> httpx.AsyncClient:
        return self._given if self._given is not None else await self._pooled.get()

    async def fetch(self, request: Request, /) -> Response:
        """Send *request* to the origin; return its response, the body whole or streaming."""
        import httpx

        parts = urlsplit(request.url)
        suffix = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        target = self._base + suffix
        headers = [(k, v) for k, v in request.headers.without(*HOP_BY_HOP, "host").items()]
        client = await self._http()
        what = f"{request.method} {self._shown + suffix!r}"
        idempotent = request.method.upper() in IDEMPOTENT
        try:
            sent = client.build_request(
                request.method, target, headers=headers, content=request.body or None
            )
            try:
                response = await client.send(sent, stream=True)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                if not idempotent:
                    raise
                # never answered: likely a pooled connection the origin had closed
                fresh = await self._fresh.get()
                response = await fresh.send(sent, stream=True)
        except httpx.HTTPError as exc:
            unsent = (
                httpx.ConnectError,
                httpx.ConnectTimeout,
                httpx.PoolTimeout,
                httpx.UnsupportedProtocol,
                httpx.InvalidURL,
            )
            if idempotent or isinstance(exc, unsent):  # unsent: no connection, nothing sent
                if isinstance(exc, httpx.TimeoutException):
                    raise OriginTimeoutError(f"origin request {what} timed out: {exc!r}") from exc
                raise OriginError(f"origin request {what} failed: {exc!r}") from exc
            raise OutcomeUnknownError(
                f"origin request {what} may have reached the origin before it failed "
                f"({exc!r}); check its effect before sending it again"
            ) from exc
        close = functools.partial(_close, response, client)
        try:
            headers_out = without_hop_by_hop(Headers.from_wire(response.headers.raw))
            length = _length(headers_out.get("content-length"))
            if self._max_body is not None and length is not None and length > self._max_body:
                raise OriginError(f"origin body for {parts.path!r} is over {self._max_body} bytes")
            chunks = self._chunks(response, what, parts.path)
            head: list[bytes] = []
            size = 0
            async for chunk in chunks:
                head.append(chunk)
                size += len(chunk)
                if size > self._threshold:
                    break
            else:
                await close()
                return Response(response.status_code, headers_out, b"".join(head))
        except BaseException:
            await close()
            raise
        body = BodyStream(_resume(head, chunks), length=length, close=close)
        return Response(response.status_code, headers_out, stream=body)

    async def _chunks(
        self, response: httpx.Response, what: str, path: str
    ) -> AsyncGenerator[bytes]:
        import httpx

        size = 0
        try:
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if self._max_body is not None and size > self._max_body:
                    raise OriginError(f"origin body for {path!r} is over {self._max_body} bytes")
                yield chunk
        except httpx.TimeoutException as exc:
            raise OriginTimeoutError(f"origin body of {what} timed out: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise OriginError(f"origin body of {what} broke off: {exc!r}") from exc

    async def aclose(self) -> None:
        """Close the connection pools this origin made (a *client* passed in is the caller's).

        Done too by the event loop they belong to as it shuts down.
        """
        await self._fresh.aclose()
        await self._pooled.aclose()

    def __repr__(self) -> str:
        return f"HttpOrigin({self._shown!r})"


def _new_client(timeout_s: float, *, pooled: bool) -> httpx.AsyncClient:
    """The pooled client, or one that never reuses a connection (for the one retry)."""
    import httpx

    if pooled:
        return httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
    return httpx.AsyncClient(
        timeout=timeout_s,
        follow_redirects=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def _close(response: httpx.Response, client: httpx.AsyncClient) -> None:
    await response.aclose()
    await _drop_overfull(client)


async def _drop_overfull(client: httpx.AsyncClient) -> None:
    """Close each idle pooled HTTP/1.1 connection holding bytes past the end of its response.

    httpcore returns a connection to the pool once ``Content-Length`` bytes
    are read; bytes the origin sent beyond them, if they came in the same
    read as the body's end, sit in the connection's h11 buffer and would be
    parsed as the response to the next request sent on it (a response
    desync: the next client could be served, and the edge could store, the
    origin's garbage or a forged response).

    This reaches into private attributes because no public API shows those
    bytes (httpx 0.28/0.29, httpcore 1.0, h11 0.16):

    * h11 does (``Connection.trailing_data`` is public), but httpx and
      httpcore never expose the h11 connection: the path to it is
      ``AsyncClient._transport`` -> ``AsyncHTTPTransport._pool`` ->
      ``AsyncHTTPConnection._connection`` -> ``AsyncHTTP11Connection._h11_state``.
      Only ``pool.connections``, ``is_idle()`` and ``aclose()`` on the way
      are public.
    * httpcore's own guard, ``has_expired()`` (an idle connection whose
      socket is readable is dropped before reuse), sees bytes still in the
      socket, not bytes h11 has already read into its buffer.
    * The public ``network_stream`` response extension is the socket under
      h11: it cannot tell where the response ended either.
    * Closing the connection after every response (``Connection: close``,
      or ``max_keepalive_connections=0``) is public and safe, but gives up
      keep-alive for every origin response to guard against a broken origin.

    If httpcore's layout changes, the attributes are not found and nothing
    is dropped: the idempotent retry above still answers when the garbage is
    not a valid response, and ``tests/cdn/test_proxy.py``
    (``test_a_body_longer_than_its_content_length_does_not_poison_the_pool``)
    fails, so the upgrade cannot pass CI unnoticed.
    """
    pool: Any = getattr(getattr(client, "_transport", None), "_pool", None)
    for connection in list(getattr(pool, "connections", ())):  # public on the pool
        state = getattr(getattr(connection, "_connection", None), "_h11_state", None)
        trailing = getattr(state, "trailing_data", (b"", False))  # public on h11's Connection
        if trailing[0] and connection.is_idle():
            await connection.aclose()


def _length(value: str | None) -> int | None:
    # isascii: str.isdigit() also takes superscripts and other scripts' digits.
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return int(value)


async def _resume(head: list[bytes], rest: AsyncGenerator[bytes]) -> AsyncIterator[bytes]:
    try:
        while head:
            yield head.pop(0)
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()
