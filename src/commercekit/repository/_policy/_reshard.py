"""Planning a move to more (or fewer) shards: which keys change owner.

Pure: give it the keys (say, every customer id) and the old and new shard
names; it says, per key that moves, where from and where to. With the default
placement (:func:`ketama_shards`, a ketama ring) adding one shard to n moves
about 1/(n+1) of the keys and every moved key goes *to the new shard*: no
rows move between the old shards, so the copy is one-way. That is why the
repository places shards with ketama by default rather than Maglev, whose
better balance costs keys moving between old shards too; :func:`capped_shards`
balances as well as Maglev with ketama's total movement, a few keys (0.06-0.2 %)
moving between old shards. Whatever moves, every moved key is listed with
both its shards, so the copy below works for any placement. ``docs/repository.md`` describes the
copy: copy the moving rows to their new shard, switch the topology, then
delete them from the old one.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

from ._placement import ShardPlacement, ketama_shards, shard_key_text

__all__ = ["keys_to_move"]


def keys_to_move(
    keys: Iterable[Hashable],
    old_shards: Sequence[str],
    new_shards: Sequence[str],
    *,
    placement: ShardPlacement = ketama_shards,
) -> dict[Hashable, tuple[str, str]]:
    """Map each key whose owner changes to ``(old_shard, new_shard)``.

    Pass the *placement* the :class:`Database` uses, and the shard names in
    topology order (ketama breaks its rare point collisions by that order).
    """
    old, new = placement(list(old_shards)), placement(list(new_shards))
    moves: dict[Hashable, tuple[str, str]] = {}
    for key in keys:
        text = shard_key_text(key)
        before, after = old.pick(text), new.pick(text)
        if before != after:
            moves[key] = (before, after)
    return moves
