"""Slow start: the share of its keys a node back in service takes, as time passes.

A node that comes up (added, marked up, or back from an ejection) with a
:class:`SlowStart` policy takes a share of its keys that grows from the
policy's first share to 1 over its window; a key hashed to ``u`` in ``[0, 1)``
goes to it while ``u`` is under the share. Read from the injected clock at
pick time, never from a timer. Pure: the balancer ends the warm-up under its
lock once the share reaches 1.
"""

from __future__ import annotations

from commercekit.errors import InvalidStateError

from ._health import NodeHealth
from ._member import Member
from ._options import SlowStart

__all__ = ["current_share", "warm_share"]


def warm_share(slow_start: SlowStart | None, since: float, now: float) -> float:
    """The share a node warming up since *since* takes at *now* (1 or more: warm)."""
    if slow_start is None:
        raise InvalidStateError("a warming member needs a slow start policy")
    return slow_start.share(now - since)


def current_share(slow_start: SlowStart | None, member: Member, now: float) -> float:
    """The share of its keys *member* takes at *now*: 0 out of service, 1 when warm."""
    if member.health is not NodeHealth.UP:
        return 0.0
    if member.warm_since is None or slow_start is None:
        return 1.0
    return slow_start.share(now - member.warm_since)
