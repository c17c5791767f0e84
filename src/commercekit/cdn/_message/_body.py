"""``BodyStream``: a response body that is still arriving, as an async iterator of chunks.

Small bodies travel as ``bytes`` in :attr:`Response.body`; a large one (or
one of unknown length) travels as a ``BodyStream`` in :attr:`Response.stream`,
so that neither the origin side nor the client side ever holds it whole. A
stream is read once; whoever stops early calls :meth:`BodyStream.aclose`,
which releases the origin connection (or detaches from a shared body).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

from commercekit.errors import InvalidStateError, OriginError

__all__ = ["CHUNK_BYTES", "STREAM_THRESHOLD_BYTES", "BodyStream"]

CHUNK_BYTES = 64 * 1024
"""The size of the pieces bodies are read, shared and sent in."""

STREAM_THRESHOLD_BYTES = 256 * 1024
"""Bodies up to this size are read whole (``Response.body``); larger ones stream."""


class BodyStream:
    """The chunks of one body, read once with ``async for``; *length* when it is known.

    *chunks* is any async iterable of ``bytes``; *close* (optional) runs once
    on :meth:`aclose`, after the iterator's own ``aclose``. An error while
    iterating means the body is broken: a front end must then abort the
    connection rather than end the response. A body that ends short of (or
    runs past) *length* raises :class:`~commercekit.cdn.OriginError`.
    """

    __slots__ = ("_chunks", "_close", "_closed", "_started", "length")

    def __init__(
        self,
        chunks: AsyncIterable[bytes],
        *,
        length: int | None = None,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._chunks = chunks
        self._close = close
        self._started = False
        self._closed = False
        self.length = length

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise InvalidStateError("a BodyStream can be read only once")
        self._started = True
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        size = 0
        try:
            async for chunk in self._chunks:
                if chunk:
                    size += len(chunk)
                    if self.length is not None and size > self.length:
                        raise OriginError(f"the body is longer than its {self.length} bytes")
                    yield chunk
            if self.length is not None and size != self.length:
                raise OriginError(f"the body ended after {size} of its {self.length} bytes")
        finally:
            await self.aclose()

    async def read(self) -> bytes:
        """Read the rest of the body into one ``bytes`` (for bodies known to fit in memory)."""
        buffer = io.BytesIO()
        async for chunk in self:
            buffer.write(chunk)
        return buffer.getvalue()  # CPython hands over the buffer without copying it

    async def aclose(self) -> None:
        """Stop reading and release what the stream holds; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        closer: Any = getattr(self._chunks, "aclose", None)
        try:
            if closer is not None:
                await closer()
        finally:
            if self._close is not None:
                await self._close()

    @classmethod
    def of(cls, data: bytes | memoryview, *, chunk_bytes: int = CHUNK_BYTES) -> BodyStream:
        """Return a stream of *data* in pieces of *chunk_bytes* (tests, and small stored bodies)."""
        return cls(_pieces(data, chunk_bytes), length=len(data))

    def __repr__(self) -> str:
        return f"BodyStream(length={self.length!r})"


async def _pieces(data: bytes | memoryview, size: int) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])
