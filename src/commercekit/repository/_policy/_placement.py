"""Shard placement: which replication group owns a shard key, through ``commercekit.balancer``.

A placement is any :class:`~commercekit.balancer.KeyedBalancer` over the shard
names. Two ship, both minimal-movement (adding a shard to *n* moves about
1/(n+1) of the keys):

- :func:`ketama_shards`, the default, a :class:`~commercekit.balancer.KetamaBalancer`:
  *every* moved key goes to the new shard, so a resharding copy is one-way;
  the fullest shard holds 2-20 % more keys than the mean (measured at 2-32
  shards);
- :func:`capped_shards`, a :class:`~commercekit.balancer.CappedRingBalancer`:
  balanced (the fullest shard within 4 % of the mean at 2-32 shards) and
  minimal (0.998-1.05x the ideal movement), at the price of a few keys
  (0.06-0.2 %) moving between old shards on a change, so the copy is two-way.

:class:`~commercekit.balancer.MaglevBalancer` balances best but moves more
keys, more of them between old shards (see ``docs/repository.md``, "Shards").
A placement decides where existing rows live: a database keeps the one it
was created with (pass ``shard_placement=`` explicitly to change it, after a
copy planned with :func:`~commercekit.repository.keys_to_move`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from commercekit.balancer import CappedRingBalancer, KetamaBalancer, KeyedBalancer
from commercekit.errors import ConfigurationError

__all__ = ["SHARD_TABLE_BITS", "ShardPlacement", "capped_shards", "ketama_shards", "shard_key_text"]

SHARD_TABLE_BITS = 17
"""The capped ring's table for shards: 131,072 slots, about 2,000 a shard at 64 shards.

Fixed, so that a key's shard depends on the shard names alone: a table size
that followed the shard count would move nearly every key when it changed.
"""

ShardPlacement = Callable[[Sequence[str]], KeyedBalancer]
"""Builds the keyed balancer that places shard keys on the given shard names (in topology order)."""


def ketama_shards(names: Sequence[str]) -> KeyedBalancer:
    """The default placement: a ketama ring of the shard names, equal weights, no health overlay.

    Health does not apply to shards (a shard's rows live only there), so panic
    mode is off and nothing ever marks a shard down.
    """
    if not names:
        raise ConfigurationError("a shard placement needs at least one shard")
    return KetamaBalancer(list(names), name="repository-shards", panic_threshold=0.0)


def capped_shards(names: Sequence[str]) -> KeyedBalancer:
    """A balanced and minimal placement: a capped ring of the shard names, equal weights.

    Every shard's share of the keys is within 2-4 % of the mean (the ring's
    default cap), and adding or removing a shard moves close to the ideal
    share; a few of the moved keys go between old shards. Pass it as
    ``Database(..., shard_placement=capped_shards)`` and as
    ``keys_to_move(..., placement=capped_shards)``. Builds in about 25 ms at 2
    shards and 250 ms at 32; holds up to 1,024 shards.
    """
    if not names:
        raise ConfigurationError("a shard placement needs at least one shard")
    return CappedRingBalancer(
        list(names), name="repository-shards", table_bits=SHARD_TABLE_BITS, panic_threshold=0.0
    )


def shard_key_text(key: Hashable) -> str | bytes:
    """The text a shard or affinity key is hashed as: ``str(key)``, tuples joined by U+001F."""
    if isinstance(key, str | bytes):
        return key
    if isinstance(key, tuple):
        return "\x1f".join(str(part) for part in key)
    return str(key)
