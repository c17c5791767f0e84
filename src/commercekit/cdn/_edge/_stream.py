"""The streaming half of ``EdgeCache``: the pump that moves an origin body into a
:class:`Tee` (and the store), and the shaping of a streamed response for one client.

The pump runs as its own task, so a client that goes away does not stop a
body that is being stored (Varnish and nginx's ``proxy_cache`` keep fetching
too), and a slow client does not slow the store. The stored copy is committed
only after the last byte, and only if the body is as long as announced; any
failure aborts the store's write and breaks the body for every reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable

import attrs

from commercekit.cdn._message._body import BodyStream
from commercekit.cdn._message._messages import Request, Response
from commercekit.cdn._policy._conditional import not_modified_for, plan_range, range_headers
from commercekit.cdn._typing import BodyWriter, StoredBody
from commercekit.errors import OriginError, OriginTimeoutError, UnavailableError
from commercekit.metrics import Counter

from ._tee import Tee

__all__ = ["count_bytes", "counted", "finish_stream", "pump", "serve_stored_body"]

log = logging.getLogger("commercekit.cdn")


async def pump(
    source: BodyStream,
    tee: Tee,
    writer: BodyWriter | None,
    *,
    idle_timeout_s: float | None,
    on_store_error: Callable[[], None],
    commit: Callable[[BodyWriter, bytes], Awaitable[None]],
) -> None:
    """Read *source* into *tee* (and *writer*), then commit; never raises but for cancellation."""
    chunks = aiter(source)
    try:
        while True:
            if not await tee.room(idle_timeout_s):
                raise OriginError("no reader is left for a body that is not stored")
            try:
                async with asyncio.timeout(idle_timeout_s):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except TimeoutError as exc:
                raise OriginTimeoutError(f"the origin sent nothing for {idle_timeout_s} s") from exc
            tee.append(chunk)
            if writer is not None and not await _write(writer, chunk, on_store_error):
                writer = None
                tee.stop_retaining()
        if source.length is not None and tee.size != source.length:
            raise OriginError(f"the origin sent {tee.size} of {source.length} bytes")
        body = tee.finish()
        if writer is not None and body is not None:
            await commit(writer, body)
    except BaseException as exc:
        error = exc if isinstance(exc, OriginError) else OriginError(f"body failed: {exc!r:.200}")
        tee.fail(error)
        if writer is not None:
            with contextlib.suppress(Exception):
                await writer.abort()
        if not isinstance(exc, Exception):
            raise
        log.debug("origin body abandoned: %s", error)
    finally:
        with contextlib.suppress(Exception):
            await source.aclose()


async def _write(writer: BodyWriter, chunk: bytes, on_store_error: Callable[[], None]) -> bool:
    try:
        return await writer.write(chunk)
    except UnavailableError:
        on_store_error()
        with contextlib.suppress(Exception):
            await writer.abort()
        return False


async def count_bytes(chunks: AsyncIterable[bytes], counter: Counter) -> AsyncIterator[bytes]:
    """Pass *chunks* through, counting their bytes on *counter*."""
    async for chunk in chunks:
        counter.inc(len(chunk))
        yield chunk


async def _sliced(chunks: AsyncIterable[bytes], first: int, last: int) -> AsyncIterator[bytes]:
    position = 0
    async for chunk in chunks:
        end = position + len(chunk)
        if end > first:
            yield chunk[max(0, first - position) : last + 1 - position]
        position = end
        if position > last:
            return


def counted(stream: BodyStream, counter: Counter) -> BodyStream:
    """Return *stream* with its bytes counted on *counter* as they are read."""
    return BodyStream(count_bytes(stream, counter), length=stream.length, close=stream.aclose)


async def finish_stream(request: Request, response: Response, served: Counter) -> Response:
    """Apply *request*'s conditionals, ``HEAD`` and ``Range`` to a streamed full response."""
    stream = response.stream
    if stream is None:
        raise AssertionError("finish_stream needs a streamed response")  # pragma: no cover
    not_modified = not_modified_for(request, response)
    if not_modified is not None:
        await stream.aclose()
        return not_modified
    if request.method.upper() == "HEAD":
        await stream.aclose()
        return attrs.evolve(response, stream=None)
    length = stream.length
    plan = plan_range(request, response, length)
    if plan is None or length is None:
        return attrs.evolve(response, stream=counted(stream, served))
    headers = range_headers(response.headers, plan, length)
    if plan is False:
        await stream.aclose()
        return Response(416, headers, b"", response.outcome)
    first, last = plan
    part = BodyStream(_sliced(stream, first, last), length=last - first + 1, close=stream.aclose)
    return Response(206, headers, b"", response.outcome, stream=counted(part, served))


def serve_stored_body(
    request: Request, response: Response, body: StoredBody, served: Counter
) -> Response:
    """Answer *request* from a full 200 *response* whose body the store streams (*body*).

    The body is opened only when bytes go out: not for a 304, a HEAD or a
    416, and for a ``Range`` only over the part asked for.
    """
    not_modified = not_modified_for(request, response)
    if not_modified is not None:
        return not_modified
    if request.method.upper() == "HEAD":
        return response
    plan = plan_range(request, response, body.length)
    if plan is None:
        return attrs.evolve(response, stream=counted(body.open(), served))
    headers = range_headers(response.headers, plan, body.length)
    if plan is False:
        return Response(416, headers, b"", response.outcome)
    part = body.open(*plan)
    return Response(206, headers, b"", response.outcome, stream=counted(part, served))
