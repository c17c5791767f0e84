"""Large bodies in Redis: chunk keys written as the body arrives, read back as the client reads.

A body over ``chunk_bytes`` is not a hash field but ``n`` string keys::

    {ns}:c:{write id}:{i}   STRING   bytes i*size .. (i+1)*size of the body

The entry's metadata field (``m:{variant id}``) carries the manifest
``"c": [write id, n, length, size]`` and is written last, in the same
transaction that drops the variant's old ``b:`` field, so a reader sees the
old body or the whole new one, never a half-written one.

**Versions are immutable.** Every write has its own random id and writes each
of its keys once, so the keys one manifest names always hold the same bytes:
a reader that keeps to one manifest cannot mix two versions. A version that
stops being current (replaced by a put, purged, deleted) is not deleted at
once: its chunks' TTL is cut to the store's ``chunk_grace_s`` (``EXPIRE ..
LT``), as a file unlinked while open stays readable. The next lookup no
longer finds its manifest (a purge is visible to the next request), while a
reader already streaming it finishes the same bytes. Chunks also outlive
``keep_until`` by the grace, so a read that starts just before expiry ends.

**What cannot be finished breaks.** A chunk that is gone anyway (evicted by
``maxmemory``, or a reader slower than the grace) or has the wrong size
raises :class:`StoreUnavailableError` from the stream: the front end aborts
the connection, so the client never gets a short or mixed body as complete.

Chunked bodies and writes use their store only through a :class:`ChunkLink`
the store makes (its client, its round trip through deadline and breaker, its
commit of a manifest), never through the store's private attributes.

A read fetches a few chunks per round trip (``MGET``, about
``_READ_BATCH_BYTES``) and hands them out in 64 KiB pieces, so it holds one
batch, never the body.
"""

from __future__ import annotations

import io
import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import attrs

from commercekit.cdn._message._body import CHUNK_BYTES, BodyStream
from commercekit.cdn._message._stored import StoredResponse
from commercekit.errors import StoreUnavailableError
from commercekit.typing import WallClock

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_CHUNK_GRACE_S",
    "ChunkGoneError",
    "ChunkLink",
    "ChunkedBody",
    "RedisWriter",
    "chunk_key",
    "retire",
]

DEFAULT_CHUNK_BYTES = 1024 * 1024
DEFAULT_CHUNK_GRACE_S = 300
"""How long a replaced or purged version stays readable for the reads already under way."""

_READ_BATCH_BYTES = 2 * 1024 * 1024  # per round trip: what one read holds at a time
_READ_BATCH_KEYS = 16  # and at most this many keys per MGET when chunks are small


class ChunkGoneError(StoreUnavailableError):
    """A chunk of the version being read is gone or damaged: the body cannot be finished."""


def chunk_key(namespace: str, write_id: str, index: int) -> str:
    """Return the Redis key of chunk *index* of write *write_id*."""
    return f"{namespace}:c:{write_id}:{index}"


class Commit(Protocol):
    """The store's commit of an entry (``RedisStore._commit``), as a :class:`ChunkLink` holds it."""

    def __call__(
        self,
        entry: StoredResponse,
        body: bytes | None,
        manifest: list[Any] | None,
        ttl: int | None = None,
        *,
        client: Any = None,
    ) -> Awaitable[None]:
        """Make *entry* current; *client* is the running loop's, when the caller has it."""
        ...


@attrs.frozen(eq=False)
class ChunkLink:
    """What the chunked bodies and writes of one ``RedisStore`` use of it, and all they use."""

    client: Callable[[], Awaitable[Any]]
    """The store's ``redis.asyncio`` client for the running event loop."""
    namespace: str
    chunk_bytes: int
    chunk_grace_s: int
    max_entry_bytes: int
    clock: WallClock
    call: Callable[[str, Any, float | None], Awaitable[Any]]
    """Await one Redis round trip (a coroutine) within a deadline, through the store's breaker."""
    slow_deadline: Callable[[], float | None]
    """The deadline of a round trip that moves megabytes."""
    commit: Commit
    """Make an entry current: its body inline, or its manifest's chunks, for a TTL."""


@attrs.frozen(slots=True)
class ChunkedBody:
    """One stored version of a large body: the manifest, and how to read it.

    Opened once per response served (:meth:`open` does no I/O until read),
    so one entry can be served to many clients.
    """

    link: ChunkLink = attrs.field(eq=False, repr=False)
    key: str
    """The cache key (for messages)."""
    write_id: str
    count: int
    length: int
    chunk_bytes: int

    @classmethod
    def from_manifest(cls, link: ChunkLink, key: str, manifest: Sequence[Any]) -> ChunkedBody:
        """Parse ``[write id, n, length, size]`` (older manifests lack ``size``: the store's).

        Raise ``ValueError`` when the numbers do not describe ``n`` chunks of ``size``.
        """
        write_id, count, length = str(manifest[0]), int(manifest[1]), int(manifest[2])
        size = int(manifest[3]) if len(manifest) > 3 else link.chunk_bytes
        if size <= 0 or count <= 0 or not (count - 1) * size < length <= count * size:
            raise ValueError(f"manifest {list(manifest)!r} is not {count} chunks of {size}")
        return cls(link, key, write_id, count, length, size)

    def manifest(self) -> list[Any]:
        """The manifest as the metadata field stores it."""
        return [self.write_id, self.count, self.length, self.chunk_bytes]

    def chunk_keys(self, start: int = 0, stop: int | None = None) -> list[str]:
        """The Redis keys of chunks *start* .. *stop* (all by default)."""
        ns, wid = self.link.namespace, self.write_id
        return [chunk_key(ns, wid, i) for i in range(start, self.count if stop is None else stop)]

    def open(self, first: int = 0, last: int | None = None) -> BodyStream:
        """Return a stream of bytes *first* .. *last* (inclusive; to the end by default).

        Only the chunks that cover the range are fetched, a few per round trip.
        """
        end = self.length - 1 if last is None else last
        if not 0 <= first <= end < self.length:
            raise ValueError(f"range {first}-{last} is outside a body of {self.length} bytes")
        return BodyStream(self._read(first, end), length=end - first + 1)

    async def read(self) -> bytes:
        """Return the whole body (for callers that need it in memory)."""
        buffer = io.BytesIO()
        async for piece in self._read(0, self.length - 1):
            buffer.write(piece)
        return buffer.getvalue()  # hands the buffer over: the body is held once

    async def _read(self, first: int, last: int) -> AsyncIterator[bytes]:
        link, size = self.link, self.chunk_bytes
        batch = max(1, min(_READ_BATCH_KEYS, _READ_BATCH_BYTES // size))
        index, stop = first // size, last // size + 1
        r = await link.client()  # once for the whole read, not once per batch
        while index < stop:
            upto = min(stop, index + batch)
            parts: list[bytes | None] = await link.call(
                "read chunks",
                r.mget(self.chunk_keys(index, upto)),
                link.slow_deadline(),  # megabytes a round trip: more than one lookup's deadline
            )
            for offset in range(upto - index):
                i = index + offset
                part = self._checked(i, parts[offset])
                parts[offset] = None  # each chunk is held only while it is handed out
                start = i * size
                lo, hi = max(0, first - start), min(len(part), last + 1 - start)
                with memoryview(part) as view:
                    for a in range(lo, hi, CHUNK_BYTES):
                        yield bytes(view[a : min(hi, a + CHUNK_BYTES)])
                del part  # not held through the next round trip
            index = upto

    def _checked(self, index: int, part: bytes | None) -> bytes:
        expected = min(self.chunk_bytes, self.length - index * self.chunk_bytes)
        if part is not None and len(part) == expected:
            return part
        what = "is gone" if part is None else f"has {len(part)} bytes, not {expected}"
        raise ChunkGoneError(
            f"Redis store {self.link.namespace!r}: chunk {index} of {self.count} of "
            f"{self.key!r} (write {self.write_id}) {what}: evicted by maxmemory, or read "
            f"more than chunk_grace_s={self.link.chunk_grace_s} after a purge, an overwrite "
            "or keep_until; the body is broken off, the client should retry"
        )


async def retire(link: ChunkLink, bodies: Sequence[ChunkedBody], client: Any = None) -> None:
    """Cut the chunks of versions no longer current to the grace (``EXPIRE .. LT``).

    *client* is the running loop's client, when the caller has it already.
    """
    keys = [k for body in bodies for k in body.chunk_keys()]
    if not keys:
        return
    r = client if client is not None else await link.client()
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.expire(k, link.chunk_grace_s, lt=True)
    await link.call("retire chunks", pipe.execute(), None)


class RedisWriter:
    """A streaming write of one entry into a ``RedisStore`` (see the module docstring)."""

    def __init__(
        self, link: ChunkLink, entry: StoredResponse, ttl_s: int, *, client: Any = None
    ) -> None:
        self._link = link
        self._client = client  # the running loop's: resolved once, at the first need
        self._overhead = entry.size
        self._ttl = ttl_s + link.chunk_grace_s  # a read that starts at keep_until can finish
        self._id = secrets.token_hex(8)
        self._size = link.chunk_bytes
        self._pending = bytearray()
        self._count = 0
        self._length = 0
        self._aborted = False

    async def write(self, chunk: bytes, /) -> bool:
        """Send each full chunk to Redis as it fills; False once over ``max_entry_bytes``."""
        if self._aborted:
            return False
        self._length += len(chunk)
        if self._overhead + self._length > self._link.max_entry_bytes:
            await self.abort()
            return False
        self._pending += chunk
        size = self._size
        while len(self._pending) > size:  # a body of at most one chunk goes in the hash
            await self._flush(bytes(self._pending[:size]))
            del self._pending[:size]
        return True

    async def _flush(self, data: bytes) -> None:
        key = chunk_key(self._link.namespace, self._id, self._count)
        self._count += 1
        link = self._link
        await link.call(
            "write a chunk",
            (await self._redis()).set(key, data, ex=self._ttl),
            link.slow_deadline(),
        )

    async def _redis(self) -> Any:
        """The running loop's client, asked of the store once per writer."""
        if self._client is None:
            self._client = await self._link.client()
        return self._client

    async def commit(self, entry: StoredResponse, /) -> None:
        """Write the last chunk, then the manifest (the entry becomes visible)."""
        if self._aborted:
            return
        ttl = math.ceil(entry.keep_until - self._link.clock())
        if ttl <= 0:
            await self.abort()
            return
        if self._count == 0:  # shorter than one chunk: kept in the hash, as put keeps it
            body, self._pending = bytes(self._pending), bytearray()
            await self._link.commit(entry, body, None, ttl, client=await self._redis())
            return
        if self._pending:
            await self._flush(bytes(self._pending))
            self._pending = bytearray()
        manifest = [self._id, self._count, self._length, self._size]
        await self._link.commit(entry, None, manifest, ttl, client=await self._redis())

    async def abort(self) -> None:
        """Delete the chunks written so far (no manifest named them: no reader can hold them)."""
        self._aborted = True
        self._pending = bytearray()
        if self._count:
            keys = [chunk_key(self._link.namespace, self._id, i) for i in range(self._count)]
            self._count = 0
            await self._link.call("drop chunks", (await self._redis()).delete(*keys), None)
