"""``MemoryStore``: an in-process store bounded by bytes, with W-TinyLFU admission.

The algorithm is Caffeine's W-TinyLFU (Einziger, Friedman, Manes 2017),
adapted to sizes in bytes: a small LRU *window* (1% of the bytes) takes new
entries; what falls out of it is a *candidate* for the main space, a
segmented LRU (20% *probation*, 80% *protected*). When the main space is
full, a candidate gets in only if a count-min sketch says it is seen more
often than the LRU *victim* of probation; else the candidate is dropped. One
burst of one-hit wonders therefore cannot flush the popular objects, which is
where plain LRU loses on skewed (Zipf) traffic.

The hot path (:meth:`MemoryStore.fresh`) is a dict lookup, a comparison with
a precomputed deadline, and an append to a bounded read buffer. Moving the
entry in its LRU list and counting it in the sketch happen later, in a batch,
when the buffer is drained on the next write or miss (Caffeine's read
buffer; under heavy read load some reads are dropped from the sketch, which
only blurs the frequencies a little).

Not thread-safe: one event loop (or one thread) uses it, as every
``EdgeCache`` does. This module is longer than most because the eviction
policy is one algorithm; it is kept whole so that it can be read whole.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict, deque
from collections.abc import Sequence

from commercekit.cdn._message._stored import StoredResponse
from commercekit.cdn._purge._selector import PurgeKind, PurgeSelector
from commercekit.errors import ConfigurationError
from commercekit.metrics import Metrics, NullMetrics
from commercekit.typing import WallClock

from ._sketch import FrequencySketch

__all__ = ["MemoryStore"]

_WINDOW, _PROBATION, _PROTECTED = 0, 1, 2
_READ_BUFFER = 4096


class _Slot:
    __slots__ = ("entries", "only", "segment", "size")

    def __init__(self, entries: tuple[StoredResponse, ...], segment: int) -> None:
        self.entries = entries
        self.segment = segment
        self.size = 0
        self.only: StoredResponse | None = None
        self.refresh()

    def refresh(self) -> None:
        self.size = sum(e.size for e in self.entries) + 64
        single = self.entries[0] if len(self.entries) == 1 else None
        # The fast path may only use an entry that needs no Vary match and no revalidation.
        self.only = (
            single if single is not None and not single.vary and not single.no_cache else None
        )


class _Writer:
    """A streaming write into a :class:`MemoryStore`: counts bytes, commits with ``put_now``."""

    __slots__ = ("_size", "_store")

    def __init__(self, store: MemoryStore, overhead: int) -> None:
        self._store = store
        self._size = overhead

    async def write(self, chunk: bytes, /) -> bool:
        self._size += len(chunk)
        return self._size <= self._store._max_entry

    async def commit(self, entry: StoredResponse, /) -> None:
        self._store.put_now(entry)

    async def abort(self) -> None:
        """Nothing was stored."""


class MemoryStore:
    """An in-process :class:`~commercekit.cdn.CacheStore` holding at most *max_bytes*.

    *window_fraction* and *protected_fraction* size the segments;
    *max_entry_bytes* (default an eighth of *max_bytes*) refuses objects too
    big to be worth the room. A key keeps at most *max_variants* ``Vary``
    variants (the oldest is dropped), so a field that varies per client
    (``Vary: User-Agent``) cannot make one key's lookups slow. *seed* makes
    the tie-breaking admission (against hash flooding) repeatable.
    """

    def __init__(
        self,
        max_bytes: int,
        *,
        max_entry_bytes: int | None = None,
        max_variants: int = 32,
        window_fraction: float = 0.01,
        protected_fraction: float = 0.8,
        expected_entries: int | None = None,
        clock: WallClock = time.time,
        metrics: Metrics | None = None,
        name: str = "memory",
        seed: int = 0,
    ) -> None:
        if max_bytes <= 0:
            raise ConfigurationError(f"max_bytes must be positive, got {max_bytes!r}")
        if max_variants < 1:
            raise ConfigurationError(f"max_variants must be 1 or more, got {max_variants!r}")
        if not 0 < window_fraction < 1 or not 0 < protected_fraction < 1:
            raise ConfigurationError("window_fraction and protected_fraction must be in (0, 1)")
        self._max_bytes = max_bytes
        self._window_max = max(1, int(max_bytes * window_fraction))
        self._main_max = max_bytes - self._window_max
        self._protected_max = int(self._main_max * protected_fraction)
        self._max_variants = max_variants
        self._max_entry = max_entry_bytes if max_entry_bytes is not None else max(1, max_bytes // 8)
        self._clock = clock
        self._slots: dict[str, _Slot] = {}
        self._segments: tuple[OrderedDict[str, None], ...] = (
            OrderedDict(),
            OrderedDict(),
            OrderedDict(),
        )
        self._bytes = [0, 0, 0]
        self._tags: dict[str, set[str]] = {}
        self._reads: deque[str] = deque(maxlen=_READ_BUFFER)
        self._sketch = FrequencySketch(expected_entries or max(1024, max_bytes // 16_384))
        self._random = random.Random(seed)
        m = metrics if metrics is not None else NullMetrics()
        tags = {"store": name}
        self._evictions = m.counter(
            "commercekit_cdn_evictions_total",
            description="Stored responses evicted to make room (not expiry, not purge).",
            tags=tags,
        )
        self._rejections = m.counter(
            "commercekit_cdn_admission_rejections_total",
            description="New responses TinyLFU admission refused in favour of a more popular one.",
            tags=tags,
        )
        self._stored_bytes = m.gauge(
            "commercekit_cdn_stored_bytes",
            description="Bytes held by the in-process store.",
            unit="bytes",
            tags=tags,
        )

    # -- the hot path -------------------------------------------------------------------

    def fresh(self, key: str) -> StoredResponse | None:
        """Return the fresh, unvaried stored response for *key*, or None (then use :meth:`get`)."""
        slot = self._slots.get(key)
        if slot is None:
            return None
        self._reads.append(key)
        entry = slot.only
        if entry is not None and entry.fresh_until > self._clock():
            return entry
        return None

    # -- the CacheStore protocol ----------------------------------------------------------

    async def get(self, key: str, /) -> Sequence[StoredResponse]:
        """Return the stored variants of *key*, dropping those past their ``keep_until``."""
        slot = self._slots.get(key)
        if slot is None:
            return ()
        self._reads.append(key)
        now = self._clock()
        entries = slot.entries
        if any(e.keep_until <= now for e in entries):
            kept = tuple(e for e in entries if e.keep_until > now)
            if not kept:
                self._remove(key)
                return ()
            self._replace(key, slot, kept)
            return kept
        return entries

    async def put(self, entry: StoredResponse, /) -> None:
        """Store *entry*, replacing the variant with the same ``Vary`` names and values."""
        self.put_now(entry)

    def put_now(self, entry: StoredResponse) -> None:
        """Store *entry* synchronously (what :meth:`put` does)."""
        self._drain()
        key = entry.key
        self._sketch.increment(key)
        if entry.size > self._max_entry:
            self._remove(key)
            return
        slot = self._slots.get(key)
        if slot is not None:
            same = (entry.vary, entry.variant)
            others = tuple(e for e in slot.entries if (e.vary, e.variant) != same)
            if len(others) >= self._max_variants:
                newest = sorted(others, key=lambda e: e.response_time)
                others = tuple(newest[len(others) - self._max_variants + 1 :])
            self._replace(key, slot, (*others, entry))
            self._touch(key, slot)
        else:
            slot = _Slot((entry,), _WINDOW)
            self._slots[key] = slot
            self._segments[_WINDOW][key] = None
            self._bytes[_WINDOW] += slot.size
            self._index_tags(key, slot.entries)
        self._evict()
        self._stored_bytes.set(sum(self._bytes))

    def open_write(self, entry: StoredResponse, /, *, length: int | None) -> _Writer | None:
        """Start storing *entry* whose body streams in; None if *length* is over the bound.

        The edge keeps the arriving body in one buffer and hands it over
        whole on commit, so the writer only counts: no second copy is made.
        """
        if length is not None and entry.size + length > self._max_entry:
            return None
        return _Writer(self, entry.size)

    async def delete(self, key: str, /) -> bool:
        """Remove every variant of *key*."""
        self._drain()
        found = self._remove(key)
        self._stored_bytes.set(sum(self._bytes))
        return found

    async def purge(self, selector: PurgeSelector, /, *, soft: bool, now: float) -> int:
        """Remove (hard) or mark stale from *now* (soft) the keys *selector* picks."""
        self._drain()
        if selector.kind is PurgeKind.URL:
            keys = [k for k in selector.values if k in self._slots]
        elif selector.kind is PurgeKind.TAG:
            found: set[str] = set()
            for tag in selector.values:
                found |= self._tags.get(tag, set())
            keys = sorted(found)
        else:
            keys = [k for k in self._slots if selector.matches(k, frozenset())]
        for key in keys:
            if soft:
                slot = self._slots[key]
                self._replace(key, slot, tuple(e.soft_purged(now) for e in slot.entries))
            else:
                self._remove(key)
        self._stored_bytes.set(sum(self._bytes))
        return len(keys)

    async def aclose(self) -> None:
        """Nothing to release."""

    # -- introspection ------------------------------------------------------------------

    @property
    def max_bytes(self) -> int:
        """The byte bound."""
        return self._max_bytes

    @property
    def size_bytes(self) -> int:
        """Bytes held now."""
        return sum(self._bytes)

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, key: object) -> bool:
        return key in self._slots

    def __repr__(self) -> str:
        return f"MemoryStore(keys={len(self._slots)}, bytes={self.size_bytes}/{self._max_bytes})"

    # -- internals ----------------------------------------------------------------------

    def _index_tags(self, key: str, entries: tuple[StoredResponse, ...]) -> None:
        for entry in entries:
            for tag in entry.tags:
                self._tags.setdefault(tag, set()).add(key)

    def _unindex_tags(self, key: str, entries: tuple[StoredResponse, ...]) -> None:
        for entry in entries:
            for tag in entry.tags:
                keys = self._tags.get(tag)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._tags[tag]

    def _replace(self, key: str, slot: _Slot, entries: tuple[StoredResponse, ...]) -> None:
        self._unindex_tags(key, slot.entries)
        before = slot.size
        slot.entries = entries
        slot.refresh()
        self._bytes[slot.segment] += slot.size - before
        self._index_tags(key, entries)

    def _remove(self, key: str) -> bool:
        slot = self._slots.pop(key, None)
        if slot is None:
            return False
        del self._segments[slot.segment][key]
        self._bytes[slot.segment] -= slot.size
        self._unindex_tags(key, slot.entries)
        return True

    def _drain(self) -> None:
        reads = self._reads
        if not reads:
            return
        slots = self._slots
        increment = self._sketch.increment
        while reads:
            key = reads.popleft()
            increment(key)
            slot = slots.get(key)
            if slot is not None:
                self._touch(key, slot)

    def _touch(self, key: str, slot: _Slot) -> None:
        segment = slot.segment
        if segment == _PROBATION:
            self._move(key, slot, _PROTECTED)
            protected = self._segments[_PROTECTED]
            while self._bytes[_PROTECTED] > self._protected_max and len(protected) > 1:
                demoted = next(iter(protected))
                self._move(demoted, self._slots[demoted], _PROBATION)
        else:
            self._segments[segment].move_to_end(key)

    def _move(self, key: str, slot: _Slot, segment: int) -> None:
        del self._segments[slot.segment][key]
        self._bytes[slot.segment] -= slot.size
        slot.segment = segment
        self._segments[segment][key] = None
        self._bytes[segment] += slot.size

    def _admit(self, candidate: str, victim: str) -> bool:
        frequency = self._sketch.frequency
        cand, vict = frequency(candidate), frequency(victim)
        if cand > vict:
            return True
        # A popular candidate sometimes wins a tie-or-worse, so an attacker who
        # inflates one victim's count cannot pin it for ever (Caffeine does this).
        return cand >= 6 and self._random.random() < 1 / 128

    def _evict(self) -> None:
        window, probation, protected = self._segments
        pending: deque[str] = deque()
        while self._bytes[_WINDOW] > self._window_max and window:
            key = next(iter(window))
            self._move(key, self._slots[key], _PROBATION)
            pending.append(key)
        pending_set = set(pending)
        while self._bytes[_PROBATION] + self._bytes[_PROTECTED] > self._main_max:
            victim: str | None = None
            if probation:
                first = next(iter(probation))
                if first not in pending_set:
                    victim = first
            if victim is None and protected:
                victim = next(iter(protected))
            if not pending:
                if victim is None:
                    victim = next(iter(probation), None)
                if victim is None:
                    break
                self._remove(victim)
                self._evictions.inc()
                continue
            candidate = pending[0]
            if victim is None or not self._admit(candidate, victim):
                pending.popleft()
                pending_set.discard(candidate)
                self._remove(candidate)
                self._rejections.inc()
                self._evictions.inc()
            else:
                self._remove(victim)
                self._evictions.inc()
