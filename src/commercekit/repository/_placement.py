"""Shard placement: which replication group owns a shard key, through ``commercekit.balancer``.

A placement is any :class:`~commercekit.balancer.KeyedBalancer` over the shard
names. The default, :func:`ketama_shards`, is a :class:`~commercekit.balancer.KetamaBalancer`:
adding a shard to *n* moves only the keys the new shard takes (about
1/(n+1) of them, every one *to* the new shard), which is what a resharding
copy needs; :class:`~commercekit.balancer.MaglevBalancer` balances better but
also moves keys between the old shards (see ``docs/repository.md``, "Shards").
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from commercekit.balancer import KetamaBalancer, KeyedBalancer
from commercekit.errors import ConfigurationError

__all__ = ["ShardPlacement", "ketama_shards", "shard_key_text"]

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


def shard_key_text(key: Hashable) -> str | bytes:
    """The text a shard or affinity key is hashed as: ``str(key)``, tuples joined by U+001F."""
    if isinstance(key, str | bytes):
        return key
    if isinstance(key, tuple):
        return "\x1f".join(str(part) for part in key)
    return str(key)
