"""Passive outlier detection: when a run of failures ejects a node, and for how long.

Consecutive failed requests on a node in service eject it, unless that would
put more than ``max_ejected_fraction`` of the nodes out at once (always
allowing one). The ejection lasts ``base_ejection_s`` times a level that grows
with each ejection and decays by one for each ``base_ejection_s`` spent in
service since the last one ended, as Envoy's outlier detection has it. Pure:
the balancer applies the health change under its lock.
"""

from __future__ import annotations

import math

from commercekit.errors import UnavailableError

from ._health import NodeHealth
from ._member import Member
from ._options import OutlierDetection

__all__ = ["ejects", "out_of_service", "start_ejection"]


def ejects(
    detection: OutlierDetection | None, member: Member, *, members: int, ejected: int
) -> bool:
    """Whether *member*'s run of failures ejects it now, with *ejected* of *members* out."""
    if (
        detection is None
        or member.failures < detection.consecutive_failures
        or member.health is not NodeHealth.UP
        or not member.live
    ):
        return False
    return ejected < max(1, math.floor(detection.max_ejected_fraction * members))


def start_ejection(detection: OutlierDetection, member: Member, now: float) -> None:
    """Set *member*'s ejection level and end time for an ejection starting at *now*."""
    quiet = (now - member.last_ejection_end) / detection.base_ejection_s
    decay = int(quiet) if math.isfinite(quiet) else member.ejection_level
    member.ejection_level = max(0, member.ejection_level - decay) + 1
    member.eject_until = now + detection.ejection_s(member.ejection_level)
    member.ejections += 1
    member.failures = 0


def out_of_service(member: Member, balancer: str, now: float) -> UnavailableError:
    """The error for a lease asked on *member* while it is down or ejected."""
    if member.health is NodeHealth.EJECTED:
        why = (
            f"is ejected by outlier detection after failed requests in a row, for "
            f"another {max(member.eject_until - now, 0.0):.1f} s"
        )
    else:
        why = "is down (marked down, or failing its health checks)"
    return UnavailableError(
        f"node {member.name!r} of balancer {balancer!r} {why}; send the request to "
        f"another node (pick() or acquire() choose one in service), or retry once it is back"
    )
