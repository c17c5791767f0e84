"""``Tee``: one origin body shared, while it arrives, by every reader of one fetch.

Two modes, as nginx's ``proxy_cache`` and Varnish's streaming miss have them:

* **retained** (the body is being stored): every byte goes into one spool
  (``io.BytesIO``), the copy the store will keep. Readers copy their next
  piece out of it, so a reader that joins late starts from byte 0, a slow
  reader never slows the fetch, and at the end the spool becomes the stored
  ``bytes`` without a second copy (``BytesIO.getvalue`` hands its buffer over).
* **windowed** (not stored: uncacheable, or larger than the store takes):
  only a window of recent chunks is kept. The fetch waits while the slowest
  reader is more than *window_bytes* behind (backpressure), and the first
  *window_bytes* are kept until exceeded so that coalesced waiters can still
  join; after that no one can join (:meth:`Tee.reader` returns None).

A failure ends the body for every reader with the error, never with a clean
end: a truncated body must look broken. One event loop uses a tee.
"""

from __future__ import annotations

import asyncio
import io
from collections import deque
from collections.abc import AsyncIterator

from commercekit.cdn._message._body import CHUNK_BYTES
from commercekit.errors import OriginError

__all__ = ["Tee", "TeeReader"]


class Tee:
    """A body arriving from the origin, read by any number of :class:`TeeReader` s."""

    def __init__(self, *, length: int | None, retain: bool, window_bytes: int) -> None:
        self.length = length
        spool = io.BytesIO() if retain else None
        if spool is not None and length:
            spool.seek(length - 1)
            spool.write(b"\0")  # one allocation of the exact size, then written over
            spool.seek(0)
        self._spool = spool
        self._body: bytes | None = None  # the whole body, once a retained one has ended
        self._chunks: deque[bytes] = deque()
        self._base = 0  # offset of _chunks[0]
        self._size = 0
        self._window = window_bytes
        self._readers: set[TeeReader] = set()
        self._done = False
        self._error: BaseException | None = None
        self._changed = asyncio.Event()
        self._progress = asyncio.Event()

    @property
    def size(self) -> int:
        """Bytes received so far."""
        return self._size

    @property
    def retained(self) -> bool:
        """Say whether the whole body is being kept (for the store)."""
        return self._spool is not None or self._body is not None

    @property
    def readers(self) -> int:
        """How many readers are attached."""
        return len(self._readers)

    def reader(self, first: int = 0, last: int | None = None) -> TeeReader | None:
        """Attach a reader of bytes *first* to *last* (inclusive), or None if too late to join."""
        if self._error is not None or (not self.retained and self._base > first):
            return None
        reader = TeeReader(self, first, last)
        self._readers.add(reader)
        return reader

    # -- the fetch side -----------------------------------------------------------------

    def append(self, chunk: bytes) -> None:
        """Add the next *chunk* of the body."""
        if self._spool is not None:
            self._spool.write(chunk)
        else:
            self._chunks.append(chunk)
        self._size += len(chunk)
        self._wake()
        self._trim()

    def stop_retaining(self) -> None:
        """Switch to the window: the body will not be stored after all."""
        if self._spool is None:
            return
        self._spool.truncate(self._size)
        data = self._spool.getvalue()
        self._spool = None
        if data:
            self._chunks.append(data)
        self._trim()

    def finish(self) -> bytes | None:
        """End the body; return it whole if it was retained."""
        body = None
        if self._spool is not None:
            self._spool.truncate(self._size)
            body = self._spool.getvalue()
            # Readers now slice the bytes: a view of a BytesIO that shares its
            # buffer would copy the whole body first.
            self._spool = None
            self._body = body
        self._done = True
        self._wake()
        return body

    def fail(self, error: BaseException) -> None:
        """End the body with *error* for every reader, and drop what is kept."""
        self._error = error
        self._done = True
        self._spool = None
        self._body = None
        self._chunks.clear()
        self._wake()

    async def room(self, timeout_s: float | None) -> bool:
        """Wait until the window has room; False if no reader is left to read or none came."""
        while not self.retained and self._error is None:
            if not self._readers and self._base > 0:
                return False
            if self._size - self._min_position() <= self._window:
                return True
            self._progress.clear()
            try:
                async with asyncio.timeout(timeout_s):
                    await self._progress.wait()
            except TimeoutError:
                return False
        return self._error is None

    # -- internals ----------------------------------------------------------------------

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _min_position(self) -> int:
        if self._readers:
            return min(r.position for r in self._readers)
        return 0 if self._base == 0 else self._size

    def _trim(self) -> None:
        if self.retained or self._size <= self._window:
            return
        low = self._min_position()
        chunks = self._chunks
        while chunks and self._base + len(chunks[0]) <= low:
            self._base += len(chunks.popleft())

    def _moved(self) -> None:
        self._progress.set()
        self._trim()

    def _detach(self, reader: TeeReader) -> None:
        self._readers.discard(reader)
        self._moved()

    def _piece(self, position: int, limit: int) -> bytes:
        if self._body is not None:
            return self._body[position : position + limit]
        if self._spool is not None:
            with self._spool.getbuffer() as view:
                return bytes(view[position : min(position + limit, self._size)])
        offset = self._base
        for chunk in self._chunks:
            end = offset + len(chunk)
            if position < end:
                start = position - offset
                if start == 0 and len(chunk) <= limit:
                    return chunk
                return chunk[start : start + limit]
            offset = end
        raise AssertionError("a reader fell out of the window")  # pragma: no cover


class TeeReader:
    """One reader's position in a :class:`Tee`; iterate it for the chunks."""

    __slots__ = ("_last", "_tee", "position")

    def __init__(self, tee: Tee, first: int, last: int | None) -> None:
        self._tee = tee
        self.position = first
        self._last = last

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        tee = self._tee
        try:
            while True:
                end = tee._size if self._last is None else min(tee._size, self._last + 1)
                if tee._error is not None:
                    raise OriginError(f"the body broke off: {tee._error}") from tee._error
                if self.position < end:
                    piece = tee._piece(self.position, min(CHUNK_BYTES, end - self.position))
                    self.position += len(piece)
                    tee._moved()
                    yield piece
                    continue
                if tee._done or (self._last is not None and self.position > self._last):
                    return
                await tee._changed.wait()
        finally:
            self.close()

    def close(self) -> None:
        """Detach from the tee (it no longer waits for this reader)."""
        self._tee._detach(self)

    async def aclose(self) -> None:
        """Detach from the tee."""
        self.close()
