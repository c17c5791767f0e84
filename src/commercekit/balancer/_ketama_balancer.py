"""``KetamaBalancer``: the libketama / ``uhashring`` ring, with the same health overlay."""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from hashlib import md5

from commercekit.errors import ConfigurationError
from commercekit.metrics import Metrics
from commercekit.typing import MonotonicClock

from ._keyed import KeyedPool
from ._placement._hashing import key_bytes
from ._placement._ketama import build_continuum
from ._pool._member import Member, Nodes
from ._pool._options import OutlierDetection, SlowStart
from ._typing import Key

__all__ = ["MAX_NODES", "KetamaBalancer"]

_RING_SIZE = 1 << 32

MAX_NODES = 4096
"""The most nodes a ketama ring holds: 655,360 points, built in about 1-2 s.

Every membership change rebuilds the whole ring (160 MD5 points a node and a
sort); past this, builds take many seconds and each ``add()`` as long. For
larger fleets use :class:`MaglevBalancer`, which builds 10,000 nodes in under
a second.
"""


class KetamaBalancer(KeyedPool):
    """A ketama ring: every key goes to the node libketama and ``uhashring`` send it to.

    For users moving from memcached clients, twemproxy or ``uhashring``: with the
    same node names and (integer) weights, ``pick(key)`` equals
    ``uhashring.HashRing(nodes, hash_fn="ketama").get_node(key)``; the tests
    compare whole mappings. Nodes keep the order they were added in, which
    decides the owner of the rare colliding points, as in ``uhashring``.

    Adding or removing a node moves only the keys of the points it gains or
    loses. The price is balance: with 160 points a node, the busiest node owns
    10-30 % more of the key space than the mean, and a pick costs an MD5 and a
    binary search. A node out of service keeps its points; its keys go to the
    next node clockwise that is in service, and come back when it recovers.
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
        balance_factor: float = 1.25,
    ) -> None:
        super().__init__(
            name=name,
            metrics=metrics,
            clock=clock,
            panic_threshold=panic_threshold,
            outlier_detection=outlier_detection,
            slow_start=slow_start,
        )
        self._init_keyed(balance_factor)
        self._nobody = Member("", 1.0, None)
        self._nobody.live = False
        self._nobody.serving = None
        self._ring: tuple[Sequence[int], list[Member]] = ([_RING_SIZE], [self._nobody])
        self._populate(nodes)

    def _check_weights(self, weights: list[float]) -> None:
        if len(weights) > MAX_NODES:
            raise ConfigurationError(
                f"a KetamaBalancer holds at most {MAX_NODES:,} nodes (each change rebuilds "
                f"the ring of 160 points a node), got {len(weights):,}; use MaglevBalancer "
                f"for larger fleets"
            )

    def _build(self, members: list[tuple[Member, float]]) -> Callable[[], None]:
        points, owners = build_continuum([(m.name, weight) for m, weight in members])
        ring = (
            (points, [members[i][0] for i in owners]) if points else ([_RING_SIZE], [self._nobody])
        )

        def install() -> None:
            self._ring = ring

        return install

    def pick(self, key: Key) -> str:
        """The node for *key*: the owner of the first point above ``md5(key)``, if in service."""
        try:
            data = key.encode()  # type: ignore[union-attr]
        except (AttributeError, UnicodeEncodeError):
            data = key_bytes(key)  # not a str, or not valid Unicode: a typed error
        points, owners = self._ring
        i = bisect_right(
            points, int.from_bytes(md5(data, usedforsecurity=False).digest()[:4], "little")
        )
        name = owners[i if i < len(points) else 0].serving
        if name is not None:
            return name
        return self._reroute(data)

    def _walk(self, data: bytes) -> tuple[float, Iterator[Member]]:
        digest = md5(data, usedforsecurity=False).digest()
        points, owners = self._ring
        start = bisect_right(points, int.from_bytes(digest[:4], "little"))
        u = int.from_bytes(digest[4:8], "little") / _RING_SIZE
        return u, self._clockwise(owners, start)

    @staticmethod
    def _clockwise(owners: list[Member], start: int) -> Iterator[Member]:
        n = len(owners)
        for i in range(start, start + n):
            yield owners[i % n]

    def points(self) -> list[tuple[int, str]]:
        """The continuum as ``(point, node)`` pairs in ring order, as ``uhashring.get_points()``."""
        points, owners = self._ring
        return [(p, m.name) for p, m in zip(points, owners, strict=True) if m.live]

    def shares(self) -> dict[str, float]:
        """Each node's share of the 32-bit key space (the arcs that end at its points)."""
        points, owners = self._ring
        shares: dict[str, float] = {}
        previous = points[-1] - _RING_SIZE
        for point, member in zip(points, owners, strict=True):
            if member.live:
                shares[member.name] = shares.get(member.name, 0.0) + (point - previous) / _RING_SIZE
            previous = point
        return shares
