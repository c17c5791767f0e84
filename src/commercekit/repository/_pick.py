"""Replica order and shard placement.

Kept behind two small functions so the repository can switch to
``commercekit.balancer`` (consistent-hash picks with a health overlay) without
touching the routing core: :class:`RoundRobinChooser` orders replicas for a
read, :class:`ShardRing` maps a shard key to its group.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Hashable, Iterable, Sequence

import xxhash

from commercekit.errors import ConfigurationError

__all__ = ["RoundRobinChooser", "ShardRing", "key_bytes"]


def key_bytes(key: Hashable) -> bytes:
    """A stable byte form of a shard or read key (``str`` of it, UTF-8)."""
    if isinstance(key, bytes):
        return key
    if isinstance(key, tuple):
        return "\x1f".join(str(part) for part in key).encode()
    return str(key).encode()


class RoundRobinChooser:
    """Spread reads over replicas: by hash of the key when there is one, else in turn."""

    def __init__(self) -> None:
        self._turn = itertools.count()

    def order(self, names: Sequence[str], key: Hashable | None) -> list[str]:
        """Return *names* rotated to start at this read's pick."""
        if len(names) < 2:
            return list(names)
        if key is None:
            start = next(self._turn) % len(names)
        else:
            start = xxhash.xxh3_64_intdigest(key_bytes(key)) % len(names)
        return [*names[start:], *names[:start]]


class ShardRing:
    """A consistent-hash ring of shard names (xxh3, ``points`` virtual nodes each).

    Adding a shard to n moves about 1/(n+1) of the keys, all of them to the new shard.
    """

    def __init__(self, names: Iterable[str], *, points: int = 160) -> None:
        self.names = tuple(names)
        if not self.names:
            raise ConfigurationError("a shard ring needs at least one shard")
        ring = sorted(
            (xxhash.xxh3_64_intdigest(f"{name}#{i}".encode()), name)
            for name in self.names
            for i in range(points)
        )
        self._hashes = [h for h, _ in ring]
        self._owners = [n for _, n in ring]

    def shard_for(self, key: Hashable) -> str:
        """The shard that owns *key*."""
        if len(self.names) == 1:
            return self.names[0]
        h = xxhash.xxh3_64_intdigest(key_bytes(key))
        index = bisect.bisect(self._hashes, h) % len(self._hashes)
        return self._owners[index]
