"""A group's replicas as ``commercekit.balancer`` sees them, and what only the repository knows.

* **Health and load**: one :class:`~commercekit.balancer.LeastLoadedBalancer`
  over the replicas (node weights are its weights). Reads report failures and
  successes to it, so its :class:`~commercekit.balancer.OutlierDetection`
  ejects a failing replica for a time that grows with repeated ejections. The
  probe drives its health overlay: a replica that cannot be reached, has
  stopped replicating, or lags out of the rotation (:func:`in_rotation`, so
  ``min_replicas`` keep serving) is marked down, and marked up when a probe
  finds it fit again. Panic mode is off: with every replica out, reads go to
  the primary, never to a replica known to be bad.
* **Affinity**: a :class:`~commercekit.balancer.MaglevBalancer` over the same
  names, used only as a placement table and never marked down:
  ``pick_n(key, n)`` is the key's full preference order, and skipping the
  replicas out of service in it gives exactly the balancer's own reroute.
* **Progress**: per replica, the replayed position, the last token wait that
  timed out, the lag and reachability from the last probe.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping

import attrs

from commercekit.balancer import (
    Lease,
    LeastLoadedBalancer,
    MaglevBalancer,
    NodeHealth,
    OutlierDetection,
)
from commercekit.errors import InvalidInputError, InvalidStateError, UnavailableError
from commercekit.metrics import Metrics
from commercekit.repository._policy._placement import shard_key_text
from commercekit.repository._policy._position import Position, later
from commercekit.repository._policy._routing import ReplicaView, RoutingPolicy, in_rotation
from commercekit.repository._typing import ReplicaStatus
from commercekit.typing import MonotonicClock

__all__ = ["ReplicaSet", "key_text"]

_UP = NodeHealth.UP
_DOWN = NodeHealth.DOWN
_EJECTED = NodeHealth.EJECTED
_AFFINITY_TABLE = 1021
"""Maglev slots for affinity: a prime with about 100 slots a replica up to ten replicas."""


def key_text(key: Hashable) -> str | bytes:
    """The text a shard or affinity key is placed by; :class:`InvalidInputError` if it has none.

    A key must print as valid Unicode (no lone surrogates) in a bounded time:
    ``str()`` of an integer past Python's digit limit raises, and is refused.
    """
    try:
        text = shard_key_text(key)
        if isinstance(text, str):
            text.encode()
    except (UnicodeError, ValueError) as exc:
        raise InvalidInputError(
            f"a shard or affinity key must print as valid Unicode text; a {type(key).__name__} "
            f"did not ({type(exc).__name__})"
        ) from None
    return text


@attrs.define
class _Progress:
    reachable: bool = True
    replicating: bool = True
    lag_s: float | None = None
    replayed: Position | None = None
    wait_failed_at_s: float | None = None


class ReplicaSet:
    """The replicas of one group: balancer health and load, affinity order, replay progress."""

    def __init__(
        self,
        group: str,
        weights: Mapping[str, float],
        *,
        outlier_detection: OutlierDetection,
        metrics: Metrics,
        clock: MonotonicClock,
    ) -> None:
        self.names = list(weights)
        self._balancer = LeastLoadedBalancer(
            dict(weights),
            name=f"repository:{group}",
            metrics=metrics,
            clock=clock,
            panic_threshold=0.0,
            outlier_detection=outlier_detection,
        )
        self._affinity = (
            MaglevBalancer(
                dict(weights),
                name=f"repository:{group}:affinity",
                table_size=_AFFINITY_TABLE,
                panic_threshold=0.0,
            )
            if len(self.names) > 1
            else None
        )
        self._lock = threading.Lock()
        self._progress = {name: _Progress() for name in self.names}

    # -- choice ---------------------------------------------------------------

    def order(self, key: Hashable | None) -> tuple[list[str], Lease | None]:
        """Every replica, the preferred first, and the lease taken on the preferred one.

        With *key*, the key's Maglev preference order, leased on its first replica
        (affinity wins over load, but the read still counts as that replica's load,
        which unkeyed reads balance on); no lease if that replica is out of service.
        Without, the least loaded of two replicas in service drawn by weight (power
        of two choices, leased), then the others in turn.
        """
        names = self.names
        if len(names) < 2:
            return list(names), None
        if key is not None:
            if self._affinity is None:
                raise InvalidStateError("replica affinity was not set up for keyed reads")
            order = self._affinity.pick_n(key_text(key), len(names))
            return order, self.lease(order[0])
        try:
            lease = self._balancer.acquire()
        except UnavailableError:  # none in service: the route falls back to the primary
            return list(names), None
        start = names.index(lease.node)
        return [*names[start:], *names[:start]], lease

    def lease(self, name: str) -> Lease | None:
        """A lease on replica *name*, where a read is going; None if it is out of service."""
        try:
            return self._balancer.acquire_node(name)
        except UnavailableError:
            return None

    def views(self, names: list[str], now_s: float) -> list[ReplicaView]:
        """Snapshots of *names* in that order; available means in service in the balancer."""
        health = self._balancer.health
        with self._lock:
            progress = [(name, self._progress[name]) for name in names]
            return [
                ReplicaView(
                    name=name,
                    available=health(name) is _UP,
                    lag_s=p.lag_s,
                    replayed=p.replayed,
                    wait_failed_at_s=p.wait_failed_at_s,
                )
                for name, p in progress
            ]

    def in_service(self, name: str) -> bool:
        """Whether *name* takes reads now (an ejection that ran out has ended)."""
        return self._balancer.health(name) is _UP

    def ejected(self, name: str) -> bool:
        """Whether outlier detection has *name* out for a while yet."""
        return self._balancer.health(name) is _EJECTED

    # -- what reads report ----------------------------------------------------

    def report_failure(self, name: str) -> bool:
        """A read could not use *name*; return True if that ejected it."""
        was_up = self._balancer.health(name) is _UP
        self._balancer.report_failure(name)
        return was_up and self._balancer.health(name) is _EJECTED

    def report_success(self, name: str) -> None:
        """A read on *name* worked: its run of failures ends."""
        self._balancer.report_success(name)

    def record_replayed(self, name: str, position: Position) -> None:
        """*name* was seen to have replayed *position*."""
        with self._lock:
            p = self._progress[name]
            p.replayed = position if p.replayed is None else later(p.replayed, position)
            p.wait_failed_at_s = None

    def record_wait_timeout(self, name: str, now_s: float) -> None:
        """A token wait on *name* timed out."""
        with self._lock:
            self._progress[name].wait_failed_at_s = now_s

    # -- what probes find -----------------------------------------------------

    def record_status(self, name: str, status: ReplicaStatus) -> None:
        """A probe reached *name* and found *status* (call :meth:`sync` after the round)."""
        with self._lock:
            p = self._progress[name]
            p.reachable = True
            p.lag_s = status.lag_s
            p.replicating = status.replicating
            if status.replayed is not None:
                # A probe's reading is the truth (a rebuilt replica may be behind
                # what was cached), so it replaces rather than merges.
                p.replayed = status.replayed
                if status.lag_s is not None and status.lag_s == 0:
                    p.wait_failed_at_s = None

    def record_unreachable(self, name: str) -> bool:
        """A probe could not reach *name*: mark it down; return True if it was in service."""
        with self._lock:
            self._progress[name].reachable = False
        was_up = self._balancer.health(name) is _UP
        self._balancer.mark_down(name)
        return was_up

    def sync(self, policy: RoutingPolicy) -> None:
        """Apply the rotation to the balancer's overlay: lagging replicas down, fit ones up.

        The decision is :func:`in_rotation` over the replicas that are reachable,
        replicating and not ejected, so ``min_replicas`` of them keep serving
        while their lag is tolerable. Ejected replicas wait out their ejection.
        """
        balancer = self._balancer
        with self._lock:
            views = [
                ReplicaView(
                    name=name,
                    available=p.reachable
                    and p.replicating
                    and balancer.health(name) is not _EJECTED,
                    lag_s=p.lag_s,
                )
                for name, p in self._progress.items()
            ]
        keep = {view.name for view in in_rotation(views, policy)}
        for name in self.names:
            health = balancer.health(name)
            if name in keep and health is _DOWN:
                balancer.mark_up(name)
            elif name not in keep and health is _UP:
                balancer.mark_down(name)
