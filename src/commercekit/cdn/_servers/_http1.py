"""The proxy's HTTP/1.x connection: an ``asyncio.Protocol`` around the ``httptools`` parser.

One :class:`Connection` per client. Requests are parsed as bytes arrive
(pipelined ones are queued and answered in order); a fresh cached hit is
answered synchronously from :class:`HitPath`'s ready-made bytes, anything
else by a task awaiting the :class:`Responder`. Limits and deadlines:

* a request's line and header section must arrive within *header_timeout_s*
  of its first byte (of the connection, for the first request), else 408 and
  the connection is closed: a client trickling headers is cut (deadlines are
  checked every 100 ms by one sweep per listener);
* an idle keep-alive connection is closed after *idle_timeout_s*, and a
  body that stops arriving for that long gets 408;
* a header section over *max_header_bytes* gets 431, a body over the
  responder's ``max_body_bytes`` 413, an HTTP version other than 1.0 and
  1.1 505, anything unparseable 400; each closes the connection.

HTTP/1.0 clients that ask for keep-alive get it (when the response's length
is known). A streamed body is written chunk by chunk, waiting while the
socket's buffer is full; if it breaks off, the connection is aborted so the
client sees a broken response, never a complete short one.
"""

# Longer than 400 lines because one connection's parser callbacks, pipelining queue,
# timeouts and write backpressure are one state machine on the hot path: split into
# objects, every request would pay the calls between them.

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Protocol, cast

from commercekit._extras import require
from commercekit.cdn._message._body import BodyStream

from ._hits import SLOW_FIELDS, HitPath, reason
from ._proxy import WireResponse

__all__ = ["Connection", "ConnectionOptions", "Responder", "ServerState"]

log = logging.getLogger("commercekit.cdn")

_NEVER = float("inf")
_TICK_S = 0.1
_LARGE = 64 * 1024
_PIECE = 256 * 1024
_MAX_QUEUE = 8
_HEADERS, _BODY, _RESPONDING, _IDLE = range(4)
_OTHER_VERSION = re.compile(rb"^[!-~]+ [!-~]+ HTTP/(?!1\.[01]\r?$)\d+\.\d+\r?$", re.MULTILINE)
"""A request line whose version is well formed but neither 1.0 nor 1.1 (llhttp refuses it)."""


class Responder(Protocol):
    """What a :class:`Connection` asks for each request (a :class:`ProxyHandler`, the admin)."""

    max_body_bytes: int

    async def respond(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[bytes | str, bytes | str]],
        body: bytes = b"",
    ) -> WireResponse: ...


class ConnectionOptions:
    """Deadlines and limits of every connection of one listener."""

    __slots__ = ("header_timeout_s", "idle_timeout_s", "max_header_bytes")

    def __init__(
        self,
        *,
        header_timeout_s: float = 10.0,
        idle_timeout_s: float = 60.0,
        max_header_bytes: int = 64 * 1024,
    ) -> None:
        self.header_timeout_s = header_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.max_header_bytes = max_header_bytes


AccessWriter = Callable[[str, bytes, bytes, str, int, int, bytes, bytes], None]
"""``(client, method, target, version, status, body_bytes, referer, user_agent)``."""


class ServerState:
    """What the connections of one listener share: the responder, options, the open set."""

    def __init__(
        self,
        responder: Responder,
        options: ConnectionOptions,
        *,
        hits: HitPath | None = None,
        access: AccessWriter | None = None,
    ) -> None:
        self.responder = responder
        self.options = options
        self.hits = hits if hits is not None and hits.enabled else None
        self.access = access
        self.connections: set[Connection] = set()
        self.draining = False
        loop = asyncio.get_running_loop()
        self.now = loop.time()
        self._sweep = loop.call_later(_TICK_S, self._tick)

    def _tick(self) -> None:
        """Every 100 ms: advance the coarse clock; fire the deadlines that have passed.

        One timer per listener instead of one per request phase: arming a
        deadline is an addition, and 1,000 idle connections cost a scan.
        """
        loop = asyncio.get_running_loop()
        self.now = now = loop.time()
        for connection in [c for c in self.connections if c.deadline <= now]:
            connection.on_deadline()
        self._sweep = loop.call_later(_TICK_S, self._tick)

    def stop(self) -> None:
        """Stop the deadline sweep (the listener is closed and drained)."""
        self._sweep.cancel()

    def drain(self) -> None:
        """Close idle connections now; busy ones close after their current response."""
        self.draining = True
        for connection in list(self.connections):
            connection.close_when_idle()


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Request:
    __slots__ = (
        "agent",
        "body",
        "expect",
        "headers",
        "host",
        "keep_alive",
        "method",
        "referer",
        "slow",
        "target",
        "version",
    )

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.host = b""
        self.slow = False
        self.keep_alive = True
        self.version = "1.1"
        self.referer = b""
        self.agent = b""
        self.expect = False


_HTTPTOOLS: list[ModuleType] = []


def _httptools() -> ModuleType:
    """``httptools``, imported on first use: ``import commercekit.cdn`` needs no extra."""
    if not _HTTPTOOLS:
        _HTTPTOOLS.append(require("httptools", extra="cdn", feature="The caching proxy's server"))
    return _HTTPTOOLS[0]


class Connection(asyncio.Protocol):
    """One client connection (see the module's docstring)."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._options = state.options
        self._parser = _httptools().HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._client = "-"
        self._request = _Request()
        self._header_bytes = 0
        self._raw_head = 0
        self._queue: deque[_Request] = deque()
        self._phase = _HEADERS
        self._busy = False
        self._closing = False
        self._eof = False
        self._paused = False
        self.deadline = _NEVER
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps only weak references
        self._writable: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._client = str(peer[0])
        self._state.connections.add(self)
        self._arm(self._options.header_timeout_s)
        if self._state.draining:
            self.close_when_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.connections.discard(self)
        self._closing = True
        self._disarm()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def eof_received(self) -> bool | None:
        """The client shut its side: answer what it sent, then close (``nc``, some HTTP/1.0)."""
        self._eof = True
        if self._busy or self._queue:
            return True  # keep the transport open to write the answers in progress
        return None

    def pause_writing(self) -> None:
        self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def data_received(self, data: bytes) -> None:
        if self._phase == _IDLE:
            self._phase = _HEADERS
            self._arm(self._options.header_timeout_s)
        elif self._phase == _BODY:
            self._arm(self._options.idle_timeout_s)
        try:
            self._parser.feed_data(data)
        except _httptools().HttpParserUpgrade:
            self._request.keep_alive = False  # no upgrades: answer, then close
        except _httptools().HttpParserCallbackError as exc:
            refused = exc.__context__
            self._refuse(refused.status if isinstance(refused, _Refused) else 400)
        except _httptools().HttpParserError:
            self._refuse(505 if _OTHER_VERSION.search(data) else 400)
        else:  # a header section still incomplete past the limit (one endless field)
            if self._phase == _HEADERS:
                self._raw_head += len(data)
                if self._raw_head > self._options.max_header_bytes:
                    self._refuse(431)

    # -- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._request = _Request()
        self._header_bytes = 0
        self._raw_head = 0
        if self._phase != _HEADERS:
            self._phase = _HEADERS
            self._arm(self._options.header_timeout_s)

    def on_url(self, url: bytes) -> None:
        self._request.target += url
        self._header_bytes += len(url)
        if self._header_bytes > self._options.max_header_bytes:
            raise _Refused(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self._options.max_header_bytes:
            raise _Refused(431)
        request = self._request
        request.headers.append((name, value))
        lowered = name.lower()
        if lowered == b"host":
            request.host = value
        elif lowered in SLOW_FIELDS:
            request.slow = True
        elif lowered == b"content-length":
            if value.isdigit() and int(value) > self._state.responder.max_body_bytes:
                raise _Refused(413)
        elif lowered == b"referer":
            request.referer = value
        elif lowered == b"user-agent":
            request.agent = value
        elif lowered == b"expect" and value.lower() == b"100-continue":
            request.expect = True

    def on_headers_complete(self) -> None:
        parser = self._parser
        request = self._request
        request.version = parser.get_http_version()
        if request.version not in ("1.1", "1.0"):
            raise _Refused(505)
        request.method = parser.get_method()
        request.keep_alive = parser.should_keep_alive()
        if request.expect and request.version == "1.1" and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the client may send
        self._phase = _BODY
        self._arm(self._options.idle_timeout_s)

    def on_body(self, body: bytes) -> None:
        self._request.body += body
        if len(self._request.body) > self._state.responder.max_body_bytes:
            raise _Refused(413)

    def on_message_complete(self) -> None:
        self._disarm()
        self._phase = _RESPONDING
        request = self._request
        if self._busy or self._queue:
            self._queue.append(request)
            if len(self._queue) >= _MAX_QUEUE and self._transport is not None:
                self._transport.pause_reading()
                self._paused = True
            return
        self._dispatch(request)

    # -- answering ----------------------------------------------------------------------

    def _dispatch(self, request: _Request) -> None:
        while True:
            hits = self._state.hits
            if hits is not None and request.method == b"GET" and not request.slow:
                found = hits.lookup(request.host, request.target)
                if found is not None:
                    head, body = found
                    if len(body) > _LARGE:  # written piece by piece as the socket drains
                        self._busy = True
                        self._task = self._loop.create_task(self._send_large(request, head, body))
                        return
                    self._write_hit(request, head, body)
                    if not self._next_cycle(request, 200, len(body)):
                        return
                    if not self._queue:
                        return
                    request = self._queue.popleft()
                    continue
            self._busy = True
            self._task = self._loop.create_task(self._respond(request))
            return

    def _hit_tail(self, request: _Request) -> bytes:
        if not request.keep_alive or self._state.draining:
            request.keep_alive = False
            return b"connection: close\r\n\r\n"
        return b"\r\n" if request.version == "1.1" else b"connection: keep-alive\r\n\r\n"

    def _write_hit(self, request: _Request, head: bytes, body: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(head + self._hit_tail(request) + body)

    async def _send_large(self, request: _Request, head: bytes, body: bytes) -> None:
        try:
            transport = self._transport
            if transport is None or transport.is_closing():
                return
            transport.write(head + self._hit_tail(request))
            if not await self._write_body(transport, body):
                return
        finally:
            self._busy = False
        if self._next_cycle(request, 200, len(body)) and self._queue:
            self._dispatch(self._queue.popleft())

    async def _write_body(self, transport: asyncio.Transport, body: bytes) -> bool:
        """Write *body* in pieces, each once the socket's buffer has room; False if closed."""
        view = memoryview(body)
        for start in range(0, len(view), _PIECE):
            if transport.is_closing():
                return False
            transport.write(view[start : start + _PIECE])
            if self._writable is not None:
                await self._writable
        return not transport.is_closing()

    async def _respond(self, request: _Request) -> None:
        status, sent = 500, 0
        try:
            method = request.method.decode("ascii", "replace")
            status, headers, payload = await self._state.responder.respond(
                method, request.target.decode("latin-1"), request.headers, bytes(request.body)
            )
            sent = await self._write(request, status, headers, payload)
        except Exception:
            log.exception("answering a request failed")
            self.abort()
            return
        finally:
            self._busy = False
        if sent < 0:
            return
        if self._next_cycle(request, status, sent) and self._queue:
            self._dispatch(self._queue.popleft())

    async def _write(
        self,
        request: _Request,
        status: int,
        headers: list[tuple[bytes, bytes]],
        payload: bytes | BodyStream,
    ) -> int:
        """Write one response; return the body bytes sent, or -1 if the connection is gone."""
        transport = self._transport
        if transport is None or transport.is_closing():  # the client left while we waited
            if isinstance(payload, BodyStream):
                await payload.aclose()
            return -1
        keep = request.keep_alive and not self._state.draining
        chunked = False
        if isinstance(payload, BodyStream) and payload.length is None:
            if request.version == "1.1":
                chunked = True
            else:
                keep = False  # HTTP/1.0 without a length: the close ends the body
        parts = [f"HTTP/1.1 {status} {reason(status)}\r\n".encode("latin-1")]
        parts += [name + b": " + value + b"\r\n" for name, value in headers]
        if chunked:
            parts.append(b"transfer-encoding: chunked\r\n")
        if not keep:
            parts.append(b"connection: close\r\n")
            request.keep_alive = False
        elif request.version == "1.0":
            parts.append(b"connection: keep-alive\r\n")
        parts.append(b"\r\n")
        head = b"".join(parts)
        if not isinstance(payload, BodyStream):
            if len(payload) > _LARGE:
                transport.write(head)
                return len(payload) if await self._write_body(transport, payload) else -1
            transport.write(head + payload)
            return len(payload)
        transport.write(head)
        sent = 0
        try:
            async for chunk in payload:
                if transport.is_closing():
                    return -1
                transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                sent += len(chunk)
                if self._writable is not None:
                    await self._writable
        except Exception as exc:
            log.warning("a streamed body broke off, aborting the connection: %s", exc)
            self.abort()
            return -1
        finally:
            await payload.aclose()
        if chunked:
            transport.write(b"0\r\n\r\n")
        return sent

    def _next_cycle(self, request: _Request, status: int, sent: int) -> bool:
        """Log the response, then get ready for the next request; False if closing."""
        access = self._state.access
        if access is not None:
            access(
                self._client,
                request.method,
                request.target,
                request.version,
                status,
                sent,
                request.referer,
                request.agent,
            )
        transport = self._transport
        if transport is None or not request.keep_alive or self._state.draining:
            self._close()
            return False
        if self._eof and not self._queue:
            self._close()
            return False
        if self._paused and len(self._queue) < _MAX_QUEUE:
            transport.resume_reading()
            self._paused = False
        if not self._queue:
            self._phase = _IDLE
            self._arm(self._options.idle_timeout_s)
        return True

    # -- closing ------------------------------------------------------------------------

    def close_when_idle(self) -> None:
        """Close now if between requests, else after the current response (draining)."""
        if self._busy or self._queue:
            return
        if self._phase == _IDLE or (self._phase == _HEADERS and not self._started()):
            self._close()

    def _refuse(self, status: int) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            body = f"{status} {reason(status)}\n".encode()
            transport.write(
                f"HTTP/1.1 {status} {reason(status)}\r\ncontent-type: text/plain\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                + body
            )
        self._close()

    def on_deadline(self) -> None:
        """Called by the listener's sweep once :attr:`deadline` has passed."""
        self.deadline = _NEVER
        if self._busy:
            return
        if self._phase == _IDLE or (self._phase == _HEADERS and not self._started()):
            self._close()
        else:
            self._refuse(408)

    def _started(self) -> bool:
        return bool(self._request.target or self._header_bytes)

    def _arm(self, delay_s: float) -> None:
        self.deadline = self._state.now + delay_s

    def _disarm(self) -> None:
        self.deadline = _NEVER

    def _close(self) -> None:
        self._closing = True
        self._disarm()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection at once (a broken body, or a drain past its deadline)."""
        self._closing = True
        self._disarm()
        if self._transport is not None:
            self._transport.abort()

    def __repr__(self) -> str:
        return f"Connection(client={self._client!r}, busy={self._busy})"
