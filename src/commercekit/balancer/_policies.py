"""Balancers for traffic without affinity: weighted round robin and power-of-two-choices.

Both share the keyed balancers' membership, health overlay, outlier
detection, slow start, panic mode and leases (:class:`Pool`); only the choice
differs. Each builds a weighted *schedule*, a list of node cells in which
every node appears in proportion to its weight, smoothly interleaved (stride
scheduling), and rebuilds it on membership changes only; health flips skip
entries on the fly.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections.abc import Callable

from commercekit.errors import UnavailableError
from commercekit.metrics import Metrics
from commercekit.typing import MonotonicClock

from ._pool._base import Pool
from ._pool._lease import Lease
from ._pool._member import Member, Nodes
from ._pool._options import OutlierDetection, SlowStart

__all__ = ["LeastLoadedBalancer", "RoundRobinBalancer", "weighted_schedule"]

_GOLDEN = 0.6180339887498949
_MAX_SCHEDULE = 65536


def weighted_schedule(members: list[Member], weights: list[float]) -> list[Member]:
    """*members* interleaved in proportion to *weights* (stride scheduling).

    Equal weights give each member once, in order. Otherwise the schedule has
    ``min(100 * n, 65536)`` entries, each member's count its weight's share
    rounded by largest remainder, spread evenly.
    """
    if not members:
        return []
    if min(weights) == max(weights):
        return list(members)
    length = min(100 * len(members), _MAX_SCHEDULE)
    total = sum(weights)
    exact = [length * w / total for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(members)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: length - sum(counts)]:
        counts[i] += 1
    # Each member's k-th entry is due at (k + 0.5) / count; take entries in due order.
    heap = [(0.5 / c, i, 0) for i, c in enumerate(counts) if c > 0]
    heapq.heapify(heap)
    schedule: list[Member] = []
    while heap:
        _, i, k = heapq.heappop(heap)
        schedule.append(members[i])
        if k + 1 < counts[i]:
            heapq.heappush(heap, ((k + 1.5) / counts[i], i, k + 1))
    return schedule


class _Scheduled(Pool):
    """A pool whose placement is a weighted schedule of its members."""

    _schedule: list[Member]

    def _build(self, members: list[tuple[Member, float]]) -> Callable[[], None]:
        schedule = weighted_schedule([m for m, _ in members], [w for _, w in members])

        def install() -> None:
            self._schedule = schedule

        return install

    def _takes(self, member: Member, u: float) -> bool:
        return member.ok or (member.live if self._panic else self._admits(member, u))

    def _unavailable(self) -> UnavailableError:
        if not self._members:
            return UnavailableError(f"balancer {self._name!r} has no nodes; add one with add()")
        return UnavailableError(
            f"none of the {len(self._members)} nodes of balancer {self._name!r} is in service; "
            f"retry shortly"
        )

    def acquire(self) -> Lease:
        """A lease on the next node (see :meth:`pick`); release it when the request ends."""
        with self._lock:
            member = self._choose()
            if self._counting:
                self._instruments.picks.inc()
            return self._ledger.take(member)

    def pick(self) -> str:
        """The next node for a request."""
        if self._counting:
            self._instruments.picks.inc()
        return self._choose().name

    def _choose(self) -> Member:
        raise NotImplementedError


class RoundRobinBalancer(_Scheduled):
    """Weighted round robin over the nodes in service.

    Nodes out of service are skipped where they fall in the schedule, so the
    others keep their relative order and shares. A warming node (slow start)
    takes the share of its turns its warm-up allows.
    """

    def __init__(
        self,
        nodes: Nodes = (),
        *,
        name: str = "default",
        metrics: Metrics | None = None,
        clock: MonotonicClock = time.monotonic,
        panic_threshold: float = 0.5,
        outlier_detection: OutlierDetection | None = None,
        slow_start: SlowStart | None = None,
    ) -> None:
        super().__init__(
            name=name,
            metrics=metrics,
            clock=clock,
            panic_threshold=panic_threshold,
            outlier_detection=outlier_detection,
            slow_start=slow_start,
        )
        self._turn = itertools.count()
        self._schedule = []
        self._populate(nodes)

    def _choose(self) -> Member:
        schedule = self._schedule
        n = len(schedule)
        # A node out of service gives up its turns (the next turns, not the next entry:
        # stepping to the next entry would hand the skipped turns all to one neighbour).
        for _ in range(n):
            turn = next(self._turn)
            member = schedule[turn % n]
            if self._takes(member, (turn * _GOLDEN) % 1.0):
                return member
        for member in schedule:  # other threads took the turns in between: look at them all
            if self._takes(member, 0.0):
                return member
        raise self._unavailable()


class LeastLoadedBalancer(_Scheduled):
    """Power of two choices: of two nodes drawn by weight, the one with fewer leases.

    Use :meth:`acquire` so that the balancer sees the load; ``pick()`` compares
    the leases held right now without taking one. *rng* makes the draws
    repeatable in tests.
    """

    def __init__(
        self,
        nodes: Nodes = (),
        *,
        name: str = "default",
        metrics: Metrics | None = None,
        clock: MonotonicClock = time.monotonic,
        panic_threshold: float = 0.5,
        outlier_detection: OutlierDetection | None = None,
        slow_start: SlowStart | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            name=name,
            metrics=metrics,
            clock=clock,
            panic_threshold=panic_threshold,
            outlier_detection=outlier_detection,
            slow_start=slow_start,
        )
        self._rng = rng if rng is not None else random.Random()
        self._schedule = []
        self._populate(nodes)

    def _choose(self) -> Member:
        schedule = self._schedule
        if not schedule:
            raise self._unavailable()
        draw: Callable[[], float] = self._rng.random
        chosen: list[Member] = []
        for _ in range(8):
            member = schedule[int(draw() * len(schedule))]
            if member not in chosen and self._takes(member, draw()):
                chosen.append(member)
                if len(chosen) == 2:
                    break
        if not chosen:
            chosen = [m for m in schedule if self._takes(m, draw())]
            if not chosen:
                raise self._unavailable()
        return min(chosen, key=lambda m: (m.in_flight + 1) / m.weight)
