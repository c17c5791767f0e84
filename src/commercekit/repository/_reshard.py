"""Planning a move to more (or fewer) shards: which keys change owner.

Pure: give it the keys (say, every customer id) and the old and new shard
names; it says, per key that moves, where from and where to. With consistent
hashing, adding one shard to n moves about 1/(n+1) of the keys, all to the
new shard. ``docs/repository.md`` describes the copy: copy the moving rows to
their new shard, switch the topology, then delete them from the old one.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from ._pick import ShardRing

__all__ = ["keys_to_move"]


def keys_to_move(
    keys: Iterable[Hashable], old_shards: Iterable[str], new_shards: Iterable[str]
) -> dict[Hashable, tuple[str, str]]:
    """Map each key whose owner changes to ``(old_shard, new_shard)``."""
    old, new = ShardRing(old_shards), ShardRing(new_shards)
    moves: dict[Hashable, tuple[str, str]] = {}
    for key in keys:
        before, after = old.shard_for(key), new.shard_for(key)
        if before != after:
            moves[key] = (before, after)
    return moves
