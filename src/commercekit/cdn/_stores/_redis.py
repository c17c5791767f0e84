"""``RedisStore``: a :class:`~commercekit.cdn.CacheStore` in Redis, so app servers share one tier.

Layout under a namespace ``ns`` (keys are the cache keys, so prefix purges can SCAN)::

    {ns}:k:{cache key}   HASH   m:{variant id} -> JSON metadata (with the chunk manifest)
                                b:{variant id} -> the body, raw bytes (up to chunk_bytes)
                                soft           -> epoch of the last soft purge
    {ns}:t:{tag}         SET    cache keys carrying the tag
    {ns}:c:{write id}:{i} STRING chunk i of a body over chunk_bytes (see ``_redis_chunks``)

Every key expires when its last variant passes ``keep_until`` (``EXPIRE ... NX``
then ``GT``, Redis 7), chunks ``chunk_grace_s`` later; memory is bounded by
Redis' own ``maxmemory`` policy. A version that is replaced, purged or deleted
keeps its chunks for the grace only, so that reads under way finish it
(``_redis_chunks`` says why); the next lookup no longer sees it.
A soft purge writes one ``soft`` field (no read-modify-write), and ``get``
applies it to the variants stored before it. Redis failures are raised as
:class:`StoreUnavailableError`; ``EdgeCache`` then treats the lookup as a miss.
"""

# Longer than 400 lines because one store's wire format, its Lua scripts and its commands
# must change together: a reader and a writer of another version would read each other's
# entries wrong. The chunked body writer lives in _redis_chunks.py.

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from commercekit._closing import AsyncClosing
from commercekit._loop import LoopPool, of_another_loop
from commercekit.cdn._message._headers import Headers
from commercekit.cdn._message._stored import StoredResponse
from commercekit.cdn._purge._selector import PurgeKind, PurgeSelector
from commercekit.cdn._typing import StoredBody
from commercekit.errors import ConfigurationError, StoreUnavailableError, UnavailableError
from commercekit.metrics import Metrics, NullMetrics
from commercekit.typing import WallClock

from ._breaker import Breaker
from ._redis_chunks import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_CHUNK_GRACE_S,
    ChunkedBody,
    ChunkLink,
    RedisWriter,
    retire,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisStore", "StoreUnavailableError"]

# Deletes the hashes in KEYS, cutting the chunks their manifests name to the grace
# (ARGV[2] s; EXPIRE 0 deletes). In one script, so no manifest committed meanwhile is missed.
_HARD_PURGE = """
local n = 0
for _, key in ipairs(KEYS) do
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 2) == 'm:' then
      local ok, d = pcall(cjson.decode, redis.call('HGET', key, field))
      if ok and type(d) == 'table' and type(d['c']) == 'table' then
        local id, count = d['c'][1], tonumber(d['c'][2])
        if type(id) == 'string' and count then
          for i = 0, count - 1 do
            redis.call('EXPIRE', ARGV[1] .. id .. ':' .. i, ARGV[2], 'LT')
          end
        end
      end
    end
  end
  n = n + redis.call('DEL', key)
end
return n
"""
_SOFT_IF_EXISTS = """
local n = 0
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, 'soft', ARGV[1])
    n = n + 1
  end
end
return n
"""
_SCAN_BATCH = 500
DEFAULT_TIMEOUT_S = 0.25
DEFAULT_MAX_VARIANTS = 32


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _variant_id(entry: StoredResponse) -> str:
    raw = json.dumps([entry.vary, entry.variant]).encode()
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def _meta(entry: StoredResponse, chunks: list[Any] | None = None) -> bytes:
    d: dict[str, Any] = {
        "s": entry.status,
        "h": entry.headers.items(),
        "t": [
            entry.request_time,
            entry.response_time,
            entry.initial_age,
            entry.fresh_until,
            entry.stale_while_revalidate_until,
            entry.stale_if_error_until,
            entry.keep_until,
        ],
        "v": entry.vary,
        "vv": entry.variant,
        "g": sorted(entry.tags),
        "f": [entry.no_cache, entry.revalidate_when_stale],
    }
    if chunks is not None:
        d["c"] = chunks
    return json.dumps(d, separators=(",", ":")).encode()


def _entry(key: str, d: dict[str, Any], body: bytes) -> StoredResponse:
    times = d["t"]
    return StoredResponse(
        key=key,
        status=d["s"],
        headers=Headers((k, v) for k, v in d["h"]),
        body=body,
        request_time=times[0],
        response_time=times[1],
        initial_age=times[2],
        fresh_until=times[3],
        stale_while_revalidate_until=times[4],
        stale_if_error_until=times[5],
        keep_until=times[6],
        vary=tuple(d["v"]),
        variant=tuple(d["vv"]),
        tags=frozenset(d["g"]),
        no_cache=d["f"][0],
        revalidate_when_stale=d["f"][1],
    )


class RedisStore(AsyncClosing):
    """A shared store in Redis (``redis.asyncio`` client; needs the ``[redis]`` extra).

    Pass a client (``redis.asyncio.Redis(...)``) or use :meth:`from_url`. A
    client passed in is the caller's, and so is its event loop: use it from
    one loop. :meth:`from_url` makes the store's own client on the event loop
    of its first call; it belongs to that loop, which closes it as it shuts
    down, and a later loop gets a new one (``aclose()`` or ``async with``
    closes it at once).
    Responses larger than *max_entry_bytes* are not stored; bodies over
    *chunk_bytes* are kept as chunk keys, written while they stream in. A
    replaced or purged body stays readable *chunk_grace_s* for the reads
    already under way (then they break off with :class:`StoreUnavailableError`).

    Each operation must finish within *timeout_s* (None: no deadline of our
    own) or fails with :class:`StoreUnavailableError`. After
    *breaker_failures* failures in a row, calls fail at once for
    *breaker_reset_s* seconds, then one probe is let through. A key keeps at
    most *max_variants* ``Vary`` variants (older ones are dropped).
    """

    def __init__(
        self,
        client: Redis,
        *,
        namespace: str = "commercekit:cdn",
        max_entry_bytes: int = 8 * 1024 * 1024,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        chunk_grace_s: int = DEFAULT_CHUNK_GRACE_S,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        breaker_failures: int = 3,
        breaker_reset_s: float = 1.0,
        max_variants: int = DEFAULT_MAX_VARIANTS,
        clock: WallClock = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        if timeout_s is not None and not timeout_s > 0:
            raise ConfigurationError(f"timeout_s must be positive or None, got {timeout_s!r}")
        if max_entry_bytes <= 0:
            raise ConfigurationError(f"max_entry_bytes must be positive, got {max_entry_bytes!r}")
        if max_variants < 1:
            raise ConfigurationError(f"max_variants must be 1 or more, got {max_variants!r}")
        if chunk_bytes <= 0:
            raise ConfigurationError(f"chunk_bytes must be positive, got {chunk_bytes!r}")
        if chunk_grace_s < 0:
            raise ConfigurationError(f"chunk_grace_s must be 0 or more, got {chunk_grace_s!r}")
        if not namespace or any(c in namespace for c in "*?[]"):
            raise ConfigurationError(f"namespace {namespace!r} must be non-empty, without globs")
        self._redis = client  # the caller's (from_url: the first loop's, then see _clients)
        self._clients: LoopPool[_Owned] | None = None
        self._ns = namespace
        self._max_entry = max_entry_bytes
        self._chunk = chunk_bytes
        self._grace = chunk_grace_s
        self._clock = clock
        self._timeout = timeout_s
        self._max_variants = max_variants
        m = metrics if metrics is not None else NullMetrics()
        tags = {"store": namespace}
        self._timeouts = m.counter(
            "commercekit_cdn_store_timeouts_total",
            description="Redis store operations cut at their deadline.",
            tags=tags,
        )
        self._refused = m.counter(
            "commercekit_cdn_store_breaker_refused_total",
            description="Redis store calls refused at once because the breaker was open.",
            tags=tags,
        )
        trips = m.counter(
            "commercekit_cdn_store_breaker_opened_total",
            description="Times the Redis store's circuit breaker opened.",
            tags=tags,
        )
        self._breaker = Breaker(
            failures=breaker_failures, reset_s=breaker_reset_s, on_open=trips.inc
        )
        self._link = ChunkLink(
            client=self._client,
            namespace=namespace,
            chunk_bytes=chunk_bytes,
            chunk_grace_s=chunk_grace_s,
            max_entry_bytes=max_entry_bytes,
            clock=clock,
            call=self._call,
            slow_deadline=self._slow_deadline,
            commit=self._commit,
        )

    @property
    def namespace(self) -> str:
        """The prefix of every key this store writes."""
        return self._ns

    @property
    def max_entry_bytes(self) -> int:
        """The largest response stored."""
        return self._max_entry

    @property
    def chunk_bytes(self) -> int:
        """Bodies over this size are kept as chunk keys of this size."""
        return self._chunk

    @property
    def timeout_s(self) -> float | None:
        """The deadline of each operation."""
        return self._timeout

    @property
    def breaker(self) -> Breaker:
        """The circuit breaker in front of Redis (``breaker.is_open``)."""
        return self._breaker

    @property
    def chunk_grace_s(self) -> int:
        """How long a replaced or purged body stays readable for the reads under way."""
        return self._grace

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStore:
        """Connect to Redis at *url* (``redis://127.0.0.1:6379/0``), a client per event loop.

        The client is the store's and belongs to the event loop of its first
        call: that loop closes it as it shuts down (``asyncio.run()`` does),
        and a call on a later loop makes a new one. A call from another loop
        while the first still runs is a :class:`ConfigurationError` (make a
        store per loop); one made as the loop finalizes async generators is a
        :class:`StoreUnavailableError`, sent nothing.
        """
        from commercekit._extras import require

        Redis = require("redis.asyncio", extra="redis", feature="RedisStore").Redis
        first = Redis.from_url(url)
        store = cls(first, **kwargs)
        spare = [first]

        def open_client() -> _Owned:
            return _Owned(spare.pop() if spare else Redis.from_url(url))

        store._clients = LoopPool(f"RedisStore {store._ns!r}", open_client, _close, _is_closed)
        return store

    async def _client(self) -> Redis:
        """The client of the running loop (from_url's), or the one passed in."""
        clients = self._clients
        if clients is None:
            return self._redis
        try:
            owned = await clients.get()
        except UnavailableError as exc:  # the loop is shutting down: nothing was sent
            raise StoreUnavailableError(f"Redis store {self._ns!r}: {exc}") from exc
        return owned.client

    def _k(self, key: str) -> str:
        return f"{self._ns}:k:{key}"

    def _t(self, tag: str) -> str:
        return f"{self._ns}:t:{tag}"

    def _deadline(self) -> float | None:
        """The loop time by which an operation starting now must end."""
        if self._timeout is None:
            return None
        return asyncio.get_running_loop().time() + self._timeout

    async def _call(self, what: str, coro: Any, deadline: float | None = None) -> Any:
        """Await *coro* (one Redis round trip) within *deadline*, through the breaker."""
        from redis.exceptions import RedisError

        if not self._breaker.allow():
            if inspect.iscoroutine(coro):
                coro.close()
            self._refused.inc()
            raise StoreUnavailableError(
                f"Redis store {self._ns!r} is failing; calls are skipped for now (breaker open)"
            )
        if deadline is None:
            deadline = self._deadline()
        try:
            async with asyncio.timeout_at(deadline):
                result = await coro
        except TimeoutError as exc:
            self._breaker.failure()
            self._timeouts.inc()
            raise StoreUnavailableError(
                f"Redis store {self._ns!r} did not {what} within {self._timeout} s; is Redis up?"
            ) from exc
        except (RedisError, OSError) as exc:
            self._breaker.failure()
            raise StoreUnavailableError(
                f"Redis store {self._ns!r} failed to {what}: {exc}; is Redis up?"
            ) from exc
        except RuntimeError as exc:
            if not of_another_loop(exc):
                raise
            raise ConfigurationError(
                f"the redis.asyncio client of Redis store {self._ns!r} belongs to another event "
                "loop (one that has ended, or runs elsewhere): a client passed in is the "
                "caller's, so make one per loop and close it before its loop ends, or use "
                "RedisStore.from_url, whose client belongs to the loop of each call"
            ) from exc
        self._breaker.success()
        return result

    async def get(self, key: str, /) -> Sequence[StoredResponse]:
        """Return the stored variants of *key*, soft purges applied.

        A body over ``chunk_bytes`` comes as ``stored_body`` (a
        :class:`ChunkedBody`, read a few chunks a round trip as it is
        streamed); one whose chunks are not all there (evicted) is a miss.
        """
        deadline = self._deadline()
        r = await self._client()
        found = await self._lookup(r, key, deadline)
        chunked = [c for _, c in found if c is not None]
        if not chunked:
            return [entry for entry, _ in found]
        pipe = r.pipeline(transaction=False)
        for body in chunked:
            pipe.exists(*body.chunk_keys())
        counts = dict(zip(chunked, await self._call("read", pipe.execute(), deadline), strict=True))
        out: list[StoredResponse] = []
        for entry, c in found:
            if c is None:
                out.append(entry)
            elif counts[c] == c.count:
                out.append(attrs.evolve(entry, stored_body=c))
        return out

    async def _lookup(
        self, r: Redis, key: str, deadline: float | None = None
    ) -> list[tuple[StoredResponse, ChunkedBody | None]]:
        """Return the variants of *key* (soft purges applied), a large body as its manifest.

        An entry with a :class:`ChunkedBody` has ``body == b""``; nothing of
        its body has been read.
        """
        fields: dict[bytes, bytes] = await self._call("read", r.hgetall(self._k(key)), deadline)
        if not fields:
            return []
        soft_raw = fields.get(b"soft")
        soft = float(soft_raw) if soft_raw is not None else None
        now = self._clock()
        out: list[tuple[StoredResponse, ChunkedBody | None]] = []
        for name, value in fields.items():
            if not name.startswith(b"m:"):
                continue
            try:
                d = json.loads(value)
                manifest = d.get("c")
                chunked = None
                if manifest is not None:
                    chunked = ChunkedBody.from_manifest(self._link, key, manifest)
                entry = _entry(key, d, b"" if chunked else fields.get(b"b:" + name[2:], b""))
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                continue  # a corrupt record is a miss, never a crash
            if entry.keep_until <= now:
                continue
            if soft is not None and entry.response_time <= soft:
                entry = entry.soft_purged(soft)
            out.append((entry, chunked))
        return out

    async def put(self, entry: StoredResponse, /) -> None:
        """Store *entry* under its key, replacing the variant with the same ``Vary`` values."""
        if entry.size > self._max_entry:
            return
        stored = entry.stored_body
        r = await self._client()  # once for the whole put, not once per command
        if isinstance(stored, ChunkedBody) and stored.link is self._link:
            await self._commit(entry, None, stored.manifest(), keep=stored, client=r)
            return  # a revalidated entry: its chunks are already here
        if stored is not None:
            await self._copy(entry, stored, r)
            return
        if len(entry.body) > self._chunk:
            writer = self._open_write(entry, len(entry.body), r)
            if writer is not None:
                view = memoryview(entry.body)
                for start in range(0, len(view), self._chunk):
                    await writer.write(view[start : start + self._chunk].tobytes())
                await writer.commit(entry)
            return
        await self._commit(entry, entry.body, None, client=r)

    async def _copy(self, entry: StoredResponse, stored: StoredBody, r: Redis) -> None:
        """Store a body another store keeps (read as a stream, written as chunks)."""
        writer = self._open_write(entry, stored.length, r)
        if writer is None:
            return
        stream = stored.open()
        try:
            async for piece in stream:
                if not await writer.write(piece):
                    return  # over max_entry_bytes: the writer dropped what it had
        except BaseException:
            await writer.abort()
            raise
        finally:
            await stream.aclose()
        await writer.commit(attrs.evolve(entry, stored_body=None))

    def open_write(self, entry: StoredResponse, /, *, length: int | None) -> RedisWriter | None:
        """Start a streaming write of *entry*: chunks go out as they fill, the manifest last."""
        return self._open_write(entry, length, None)

    def _open_write(
        self, entry: StoredResponse, length: int | None, r: Redis | None
    ) -> RedisWriter | None:
        """:meth:`open_write` with the running loop's client *r*, if known already."""
        ttl = math.ceil(entry.keep_until - self._clock())
        if ttl <= 0 or (length is not None and entry.size + length > self._max_entry):
            return None
        return RedisWriter(self._link, entry, ttl, client=r)

    async def _commit(
        self,
        entry: StoredResponse,
        body: bytes | None,
        manifest: list[Any] | None,
        ttl: int | None = None,
        *,
        keep: ChunkedBody | None = None,
        client: Redis | None = None,
    ) -> None:
        """Make *entry* the variant's current version: *body* inline, or *manifest*'s chunks.

        The old version is read in the same transaction that replaces it, and
        its chunks (if any, and not the same write) are retired to the grace.
        *keep* (the manifest's own chunks, stored before) live as long as the entry.
        *client* is the running loop's, when the caller has it already.
        """
        if ttl is None:
            ttl = math.ceil(entry.keep_until - self._clock())
        if ttl <= 0:
            return
        vid = _variant_id(entry)
        k = self._k(entry.key)
        r = client if client is not None else await self._client()
        pipe = r.pipeline(transaction=True)
        pipe.hget(k, f"m:{vid}")
        if body is not None:
            pipe.hset(k, mapping={f"m:{vid}": _meta(entry), f"b:{vid}": body})
        else:
            pipe.hset(k, f"m:{vid}", _meta(entry, manifest))
            pipe.hdel(k, f"b:{vid}")
        pipe.expire(k, ttl, nx=True)
        pipe.expire(k, ttl, gt=True)
        pipe.hlen(k)
        for tag in entry.tags:
            pipe.sadd(self._t(tag), entry.key)
            pipe.expire(self._t(tag), ttl, nx=True)
            pipe.expire(self._t(tag), ttl, gt=True)
        if keep is not None:
            for chunk in keep.chunk_keys():
                pipe.expire(chunk, ttl + self._grace, gt=True)
        done = await self._call("write", pipe.execute())
        old = done[0]
        if done[4 if body is not None else 5] > 2 * self._max_variants + 1:
            await self._trim(r, k, vid)
        try:
            before = json.loads(old).get("c") if old else None
            replaced = ChunkedBody.from_manifest(self._link, entry.key, before) if before else None
        except (ValueError, IndexError, TypeError, AttributeError):
            replaced = None  # a corrupt manifest: its chunks expire with their TTL
        if replaced is not None and (manifest is None or replaced.write_id != str(manifest[0])):
            await retire(self._link, [replaced], r)

    async def _trim(self, r: Redis, k: str, vid: str) -> None:
        """Drop every variant of hash *k* but *vid* (too many: ``Vary`` on a field that varies).

        Their chunks, if any, expire with their own TTL.
        """
        names = await self._call("trim variants", r.hkeys(k))
        keep = {f"m:{vid}".encode(), f"b:{vid}".encode(), b"soft"}
        drop = [n for n in names if n not in keep]
        if drop:
            await self._call("trim variants", r.hdel(k, *drop))

    async def delete(self, key: str, /) -> bool:
        """Remove every variant of *key* (their chunks stay readable for the grace)."""
        return bool(await self._hard_purge(await self._client(), [self._k(key)]))

    async def _hard_purge(self, r: Redis, keys: Sequence[str]) -> int:
        prefix = f"{self._ns}:c:"
        script = r.eval(_HARD_PURGE, len(keys), *keys, prefix, self._grace)
        return int(await self._call("purge", script))

    def _slow_deadline(self) -> float | None:
        """For a purge that scans, or a batch of chunks: 40 lookup deadlines, 10 s at least."""
        if self._timeout is None:
            return None
        return asyncio.get_running_loop().time() + max(self._timeout * 40, 10.0)

    async def _scan(self, r: Redis, pattern: str) -> list[str]:
        found: list[str] = []
        async for raw in r.scan_iter(match=pattern, count=_SCAN_BATCH):
            found.append(raw.decode() if isinstance(raw, bytes) else raw)
        return found

    async def purge(self, selector: PurgeSelector, /, *, soft: bool, now: float) -> int:
        """Remove (hard) or mark stale from *now* (soft) the keys *selector* picks."""
        prefix = f"{self._ns}:k:"
        tag_sets: list[str] = []
        r = await self._client()  # once for the whole purge, not once per command
        if selector.kind is PurgeKind.URL:
            keys = [self._k(v) for v in selector.values]
        elif selector.kind is PurgeKind.TAG:
            tag_sets = [self._t(t) for t in selector.values]
            members: set[bytes] = set()
            for tag_key in tag_sets:
                members |= await self._call("read tags", r.smembers(tag_key))
            keys = sorted(self._k(m.decode()) for m in members)
        elif selector.kind is PurgeKind.PREFIX:
            keys = []
            for value in selector.values:
                pattern = prefix + _escape_glob(value) + "*"
                keys += await self._call("scan", self._scan(r, pattern), self._slow_deadline())
        else:
            keys = await self._call("scan", self._scan(r, prefix + "*"), self._slow_deadline())
            if not soft:
                tag_sets = await self._call(
                    "scan", self._scan(r, f"{self._ns}:t:*"), self._slow_deadline()
                )
        count = 0
        for start in range(0, len(keys), _SCAN_BATCH):
            batch = keys[start : start + _SCAN_BATCH]
            if soft:
                script = r.eval(_SOFT_IF_EXISTS, len(batch), *batch, repr(now))
                count += int(await self._call("soft purge", script))
            else:
                count += await self._hard_purge(r, batch)
        if tag_sets and not soft:
            await self._call("purge tags", r.delete(*tag_sets))
        return count

    async def aclose(self) -> None:
        """Close the client's connections (from_url's: the running loop's client)."""
        if self._clients is None:
            await self._redis.aclose()
        else:
            await self._clients.aclose()

    def __repr__(self) -> str:
        return f"RedisStore(namespace={self._ns!r})"


class _Owned:
    """A client :meth:`RedisStore.from_url` made, and whether it has been closed."""

    __slots__ = ("client", "closed")

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.closed = False


async def _close(owned: _Owned) -> None:
    owned.closed = True
    await owned.client.aclose()


def _is_closed(owned: _Owned) -> bool:
    return owned.closed
