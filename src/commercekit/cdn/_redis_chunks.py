"""Large bodies in Redis: fixed-size chunk keys written as the body arrives, a manifest last.

A body over ``chunk_bytes`` is not a hash field but ``n`` string keys::

    {ns}:c:{write id}:{i}   STRING   bytes i*chunk .. (i+1)*chunk of the body

each with the entry's TTL. The entry's metadata field (``m:{variant id}``)
carries the manifest ``"c": [write id, n, length]`` and is written last, in
the same transaction that drops the variant's old ``b:`` field, so a reader
sees the old body or the whole new one, never a half-written one. Every
write has its own random id: a concurrent write of the same key cannot mix
chunks, and the chunks of a replaced body are deleted after the swap (a
reader that still holds the old manifest then misses, and refetches). Chunks
left by a purge or a crash expire with their TTL.
"""

from __future__ import annotations

import io
import math
import secrets
from typing import TYPE_CHECKING, Any

from ._stored import StoredResponse

if TYPE_CHECKING:
    from ._redis_store import RedisStore

__all__ = ["DEFAULT_CHUNK_BYTES", "RedisWriter", "chunk_key", "read_chunks"]

DEFAULT_CHUNK_BYTES = 1024 * 1024
_READ_BATCH = 4  # chunks per round trip: bounds what one read holds besides the body


def chunk_key(namespace: str, write_id: str, index: int) -> str:
    """Return the Redis key of chunk *index* of write *write_id*."""
    return f"{namespace}:c:{write_id}:{index}"


async def read_chunks(store: RedisStore, manifest: list[Any]) -> bytes | None:
    """Return the body a manifest describes, or None if a chunk is gone (evicted, replaced)."""
    write_id, count, length = str(manifest[0]), int(manifest[1]), int(manifest[2])
    body = io.BytesIO()
    for start in range(0, count, _READ_BATCH):
        stop = min(count, start + _READ_BATCH)
        keys = [chunk_key(store.namespace, write_id, i) for i in range(start, stop)]
        parts = await store._call("read chunks", store._redis.mget(keys))
        for part in parts:
            if part is None:
                return None
            body.write(part)
    if body.tell() != length:
        return None
    return body.getvalue()  # hands the buffer over: the body is held once


class RedisWriter:
    """A streaming write of one entry into a :class:`RedisStore` (see the module docstring)."""

    def __init__(self, store: RedisStore, entry: StoredResponse, ttl_s: int) -> None:
        self._store = store
        self._overhead = entry.size
        self._ttl = ttl_s
        self._id = secrets.token_hex(8)
        self._pending = bytearray()
        self._count = 0
        self._length = 0
        self._aborted = False

    async def write(self, chunk: bytes, /) -> bool:
        """Send each full chunk to Redis as it fills; False once over ``max_entry_bytes``."""
        if self._aborted:
            return False
        self._length += len(chunk)
        if self._overhead + self._length > self._store.max_entry_bytes:
            await self.abort()
            return False
        self._pending += chunk
        size = self._store.chunk_bytes
        while len(self._pending) >= size:
            await self._flush(bytes(self._pending[:size]))
            del self._pending[:size]
        return True

    async def _flush(self, data: bytes) -> None:
        key = chunk_key(self._store.namespace, self._id, self._count)
        self._count += 1
        await self._store._call("write a chunk", self._store._redis.set(key, data, ex=self._ttl))

    async def commit(self, entry: StoredResponse, /) -> None:
        """Write the last chunk, then the manifest (the entry becomes visible)."""
        if self._aborted:
            return
        if self._pending:
            await self._flush(bytes(self._pending))
            self._pending = bytearray()
        ttl = math.ceil(entry.keep_until - self._store._clock())
        if ttl <= 0:
            await self.abort()
            return
        await self._store._commit_manifest(entry, [self._id, self._count, self._length], ttl)

    async def abort(self) -> None:
        """Delete the chunks written so far."""
        self._aborted = True
        self._pending = bytearray()
        if self._count:
            keys = [chunk_key(self._store.namespace, self._id, i) for i in range(self._count)]
            self._count = 0
            await self._store._call("drop chunks", self._store._redis.delete(*keys))
