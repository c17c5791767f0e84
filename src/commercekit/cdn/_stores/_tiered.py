"""``TieredStore``: a small in-process tier that keeps the hottest objects serving when the
shared tier (Redis) is away.

The far store is the authority while it answers: every lookup asks it, and
what it returns (small, inline bodies) is mirrored into the near
:class:`MemoryStore`, whose W-TinyLFU admission keeps the most requested ones.
When the far store fails (its deadline passed, or its breaker is open), the
lookup answers from the near tier instead, and what the edge fetches
meanwhile is kept there: the origin sees at most one fetch per object and
freshness lifetime, not one per request. Writes go to the near tier at once
and to the far one behind the caller's back (a failure is counted), so a
request never waits for a far write; deletes and purges wait for the writes
still under way, then go to both tiers (a far failure is raised, and the edge
counts it).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
from collections.abc import Sequence

from commercekit.cdn._message._stored import StoredResponse
from commercekit.cdn._purge._selector import PurgeSelector
from commercekit.cdn._typing import BodyWriter, CacheStore
from commercekit.errors import UnavailableError
from commercekit.metrics import Metrics, NullMetrics

from ._memory import MemoryStore

__all__ = ["TieredStore"]

_LANDED_KEPT = 1024

_log = logging.getLogger("commercekit.cdn")


def _mark(entries: Sequence[StoredResponse]) -> tuple[tuple[object, ...], ...]:
    return tuple((e.vary, e.variant, e.response_time, e.fresh_until) for e in entries)


class _TieredWriter:
    """Counts a streamed body for the near tier and writes it to the far one while it can."""

    __slots__ = ("_far", "_near", "_near_ok")

    def __init__(self, near: BodyWriter | None, far: BodyWriter | None) -> None:
        self._near = near
        self._far = far
        self._near_ok = near is not None

    async def write(self, chunk: bytes, /) -> bool:
        if self._near is not None and self._near_ok:
            self._near_ok = await self._near.write(chunk)
        if self._far is not None:
            try:
                if not await self._far.write(chunk):
                    self._far = None
            except UnavailableError:
                far, self._far = self._far, None  # the far store's breaker counts it
                await _quiet_abort(far)
        return self._near_ok or self._far is not None

    async def commit(self, entry: StoredResponse, /) -> None:
        if self._near is not None and self._near_ok:
            await self._near.commit(entry)
        if self._far is not None:
            await self._far.commit(entry)

    async def abort(self) -> None:
        if self._near is not None:
            await self._near.abort()
        if self._far is not None:
            await _quiet_abort(self._far)


async def _quiet_abort(writer: BodyWriter | None) -> None:
    if writer is None:
        return
    with contextlib.suppress(UnavailableError):  # its chunks expire with their TTL
        await writer.abort()


class TieredStore:
    """A :class:`~commercekit.cdn.CacheStore` of a *near* :class:`MemoryStore` before a *far* one.

    Typical: ``TieredStore(MemoryStore(32 * 2**20), RedisStore.from_url(url))``.
    Bodies the far store streams from itself (``stored_body``) are not copied
    near. The near tier may serve an object another app server purged only
    while the far store is failing (a purge cannot reach this process then).
    """

    def __init__(
        self,
        near: MemoryStore,
        far: CacheStore,
        *,
        metrics: Metrics | None = None,
        name: str = "tiered",
    ) -> None:
        self._near = near
        self._far = far
        self._pending: dict[str, int] = {}
        self._writes: set[asyncio.Task[None]] = set()
        # Far writes finished, numbered, newest last: a lookup that raced one of them
        # answers from the near tier rather than from what the far tier held before.
        self._landed: collections.deque[str] = collections.deque(maxlen=_LANDED_KEPT)
        self._landed_count = 0
        m = metrics if metrics is not None else NullMetrics()
        self._fallbacks = m.counter(
            "commercekit_cdn_near_tier_fallbacks_total",
            description="Lookups answered by the in-process tier because the far store failed.",
            tags={"store": name},
        )
        self._write_errors = m.counter(
            "commercekit_cdn_far_write_errors_total",
            description="Writes to the far store that failed (the near tier kept the response).",
            tags={"store": name},
        )

    @property
    def near(self) -> MemoryStore:
        """The in-process tier."""
        return self._near

    @property
    def far(self) -> CacheStore:
        """The shared tier."""
        return self._far

    async def get(self, key: str, /) -> Sequence[StoredResponse]:
        """Ask the far store; on its failure, answer from the near tier."""
        racing = key in self._pending
        landed_before = self._landed_count
        try:
            found = await self._far.get(key)
        except UnavailableError:
            self._fallbacks.inc()
            return await self._near.get(key)
        near = self._near
        if racing or key in self._pending or self._landed_since(landed_before, key):
            # The far answer may predate our latest write: the near tier has it, unless it is
            # a body the far store streams itself (never copied near).
            return await near.get(key) or found
        if not found:
            if key in near:
                await near.delete(key)  # gone from the far store: purged, or expired there
            return found
        inline = [e for e in found if e.stored_body is None]
        if _mark(inline) != _mark(await near.get(key)):
            await near.delete(key)  # the far store's versions replace whatever was near
            for entry in inline:
                near.put_now(entry)
        return found

    async def put(self, entry: StoredResponse, /) -> None:
        """Store *entry* near (an inline body) now, and far in the background."""
        if entry.stored_body is None:
            self._near.put_now(entry)
        key = entry.key
        self._pending[key] = self._pending.get(key, 0) + 1
        task = asyncio.ensure_future(self._put_far(entry))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def _landed_since(self, count: int, key: str) -> bool:
        """Whether a far write of *key* finished after the *count*-th (unsure counts as yes)."""
        since = self._landed_count - count
        if since > len(self._landed):
            return True
        return since > 0 and key in itertools.islice(reversed(self._landed), since)

    async def _put_far(self, entry: StoredResponse) -> None:
        try:
            await self._far.put(entry)
        except UnavailableError:
            self._write_errors.inc()
        except Exception:  # nobody awaits this task: count and log what would go unseen
            self._write_errors.inc()
            _log.exception("the far store failed to keep %s", entry.key)
        finally:
            self._landed.append(entry.key)
            self._landed_count += 1
            left = self._pending[entry.key] - 1
            if left:
                self._pending[entry.key] = left
            else:
                del self._pending[entry.key]

    async def flush(self) -> None:
        """Wait for the far writes under way (each is bounded by the far store's deadline)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    def open_write(self, entry: StoredResponse, /, *, length: int | None) -> BodyWriter | None:
        """Start a streamed write into both tiers (the near one keeps it if it fits)."""
        near = self._near.open_write(entry, length=length)
        try:
            far = self._far.open_write(entry, length=length)
        except UnavailableError:
            far = None
        if near is None and far is None:
            return None
        return _TieredWriter(near, far)

    async def delete(self, key: str, /) -> bool:
        """Remove *key* from both tiers (after the far writes under way)."""
        await self.flush()
        near = await self._near.delete(key)
        return await self._far.delete(key) or near

    async def purge(self, selector: PurgeSelector, /, *, soft: bool, now: float) -> int:
        """Purge both tiers (after the far writes under way); the count is the far store's."""
        await self.flush()
        await self._near.purge(selector, soft=soft, now=now)
        return await self._far.purge(selector, soft=soft, now=now)

    async def aclose(self) -> None:
        """Finish the far writes under way, then close both tiers."""
        await self.flush()
        try:
            await self._far.aclose()
        finally:
            await self._near.aclose()

    def __repr__(self) -> str:
        return f"TieredStore(near={self._near!r}, far={self._far!r})"
