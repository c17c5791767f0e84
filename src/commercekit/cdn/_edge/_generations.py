"""``Generations``: which fetches in flight a purge or an invalidation made obsolete.

A fetch notes the sequence number when it starts. A purge or an unsafe
request's invalidation takes the next number and records what it touched: the
keys (a URL purge, RFC 9111 4.4 invalidation), the tags or prefixes (kept in a
short log), or everything. When the fetch ends, it may store its response only
if nothing recorded since it started touches that response's key or tags.
So a ``POST /cart`` never discards the fill of ``GET /img/b.jpg``.

Memory is bounded: past *max_keys* recorded keys (or *max_log* tag/prefix
purges), the oldest half is forgotten and the *horizon* moves past them; a
fetch that started before the horizon is treated as purged (not stored),
which is safe and, with fetches far shorter than the time it takes to record
that many purges, rare.
"""

from __future__ import annotations

from collections import deque

from commercekit.cdn._purge._selector import PurgeKind, PurgeSelector

__all__ = ["Generations"]


class Generations:
    """Sequence numbers of purges and invalidations, by key, tag, prefix or everything."""

    __slots__ = ("_by_key", "_horizon", "_log", "_max_keys", "_max_log", "seq")

    def __init__(self, *, max_keys: int = 65_536, max_log: int = 1024) -> None:
        self.seq = 0
        """The number of the last purge; a fetch starting now notes it."""
        self._horizon = 0
        self._by_key: dict[str, int] = {}
        self._log: deque[tuple[int, PurgeSelector]] = deque()
        self._max_keys = max_keys
        self._max_log = max_log

    def touch_keys(self, keys: list[str] | tuple[str, ...]) -> None:
        """Record that *keys* were purged or invalidated now."""
        self.seq += 1
        for key in keys:
            self._by_key.pop(key, None)  # re-insert: the dict stays in sequence order
            self._by_key[key] = self.seq
        if len(self._by_key) > self._max_keys:
            drop = len(self._by_key) // 2
            for key in list(self._by_key)[:drop]:
                self._horizon = max(self._horizon, self._by_key.pop(key))

    def record(self, selector: PurgeSelector) -> None:
        """Record a purge of what *selector* picks (its URL or prefix values are keys)."""
        if selector.kind is PurgeKind.URL:
            self.touch_keys(selector.values)
            return
        self.seq += 1
        if selector.kind is PurgeKind.ALL:
            self._horizon = self.seq
            self._by_key.clear()
            self._log.clear()
            return
        self._log.append((self.seq, selector))
        if len(self._log) > self._max_log:
            self._horizon = max(self._horizon, self._log.popleft()[0])

    def current(self, started: int, key: str, tags: frozenset[str]) -> bool:
        """Say whether a response for *key* with *tags*, fetched since *started*, may be stored."""
        if started == self.seq:
            return True
        if started < self._horizon:
            return False
        if self._by_key.get(key, 0) > started:
            return False
        for seq, selector in reversed(self._log):
            if seq <= started:
                break
            if selector.matches(key, tags):
                return False
        return True

    def __len__(self) -> int:
        return len(self._by_key) + len(self._log)
