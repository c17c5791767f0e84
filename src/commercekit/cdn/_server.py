"""An HTTP/1.1 server for the caching proxy: asyncio streams plus ``h11`` (the ``[cdn]`` extra).

``h11`` does the HTTP/1.1 parsing and framing (keep-alive, chunked bodies,
HEAD, limits); this module only moves bytes and calls :class:`ProxyHandler`.
Bodies go out in chunks of 64 KiB with a ``drain`` after each, so a large
body (streamed, or a stored one) never sits whole in the socket's buffer. A
streamed body that breaks off aborts the connection: the client sees a
broken response (short of its ``Content-Length``, or without the last
chunk), never a complete short one.
A protocol error from a client gets its 4xx and the connection is closed; it
never takes the server down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ._body import CHUNK_BYTES, BodyStream
from ._proxy import ProxyHandler

__all__ = ["serve"]

log = logging.getLogger("commercekit.cdn")
_READ_SIZE = 64 * 1024
_IDLE_TIMEOUT_S = 30.0


async def _connection(
    handler: ProxyHandler,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    max_header_bytes: int,
) -> None:
    import h11

    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_header_bytes)

    async def send(event: Any) -> None:
        data = conn.send(event)
        if data:
            writer.write(data)
            await writer.drain()

    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await asyncio.wait_for(reader.read(_READ_SIZE), _IDLE_TIMEOUT_S)
                except TimeoutError:
                    return
                conn.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                if (
                    event is h11.PAUSED
                    and conn.our_state is h11.DONE
                    and conn.their_state is h11.DONE
                ):
                    conn.start_next_cycle()
                    continue
                return
            if isinstance(event, h11.Request):
                body = bytearray()
                while True:
                    part = conn.next_event()
                    if part is h11.NEED_DATA:
                        data = await asyncio.wait_for(reader.read(_READ_SIZE), _IDLE_TIMEOUT_S)
                        conn.receive_data(data)
                        continue
                    if isinstance(part, h11.Data):
                        body += part.data
                        if len(body) > handler.max_body_bytes:
                            await send(
                                h11.Response(
                                    status_code=413,
                                    headers=[("content-length", "0"), ("connection", "close")],
                                )
                            )
                            await send(h11.EndOfMessage())
                            return
                        continue
                    break
                method = event.method.decode("ascii", "replace")
                target = event.target.decode("latin-1")
                status, headers, payload = await handler.respond(
                    method, target, event.headers, bytes(body)
                )
                await send(h11.Response(status_code=status, headers=headers))
                if isinstance(payload, BodyStream):
                    if not await _send_stream(payload, send):
                        writer.transport.abort()
                        return
                elif len(payload) > CHUNK_BYTES:
                    for start in range(0, len(payload), CHUNK_BYTES):
                        await send(h11.Data(data=payload[start : start + CHUNK_BYTES]))
                elif payload:
                    await send(h11.Data(data=payload))
                await send(h11.EndOfMessage())
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
    except h11.RemoteProtocolError as exc:
        with contextlib.suppress(Exception):
            status = exc.error_status_hint
            await send(
                h11.Response(
                    status_code=status, headers=[("content-length", "0"), ("connection", "close")]
                )
            )
            await send(h11.EndOfMessage())
    except (ConnectionError, TimeoutError, h11.LocalProtocolError):
        pass
    except Exception:
        log.exception("connection failed")
    finally:
        with contextlib.suppress(Exception):
            writer.close()
            await writer.wait_closed()


async def _send_stream(body: BodyStream, send: Callable[[Any], Awaitable[None]]) -> bool:
    """Send *body* chunk by chunk; False if it broke off (the caller aborts the connection)."""
    import h11

    try:
        async for chunk in body:
            await send(h11.Data(data=chunk))
    except (ConnectionError, h11.LocalProtocolError):
        raise
    except Exception as exc:
        log.warning("a streamed body broke off, aborting the connection: %s", exc)
        return False
    finally:
        await body.aclose()
    return True


async def serve(
    handler: ProxyHandler,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    max_header_bytes: int = 64 * 1024,
) -> asyncio.Server:
    """Start serving *handler* on *host*:*port* and return the running ``asyncio.Server``.

    ``port=0`` picks a free port (read it from ``server.sockets[0].getsockname()``).
    Close with ``server.close(); await server.wait_closed()``.
    """
    return await asyncio.start_server(
        lambda r, w: _connection(handler, r, w, max_header_bytes), host, port
    )
