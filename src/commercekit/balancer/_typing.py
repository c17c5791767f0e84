"""The seams of the balancer: probes, hash functions, clocks, and what a health checker drives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from commercekit.typing import MonotonicClock

if TYPE_CHECKING:
    from ._pool._health import NodeHealth
    from ._pool._lease import Lease

__all__ = ["Clock", "Hasher", "HealthProbe", "HealthTarget", "Key", "KeyedBalancer"]

Key = str | bytes
"""A routing key: a session id, a customer id, a URL. ``str`` keys are hashed as UTF-8."""

Clock = MonotonicClock
"""The balancer's clock, a :data:`commercekit.typing.MonotonicClock` (``time.monotonic``)."""


class Hasher(Protocol):
    """A stable 64-bit hash of bytes with a seed, such as ``xxhash.xxh3_64_intdigest``.

    It must return the same value for the same input in every process and on
    every machine (Python's salted ``hash()`` does not), and spread its output
    evenly over ``0 .. 2**64 - 1``. Seed 0 places a key; seeds 1, 2, ... give
    the key's further preferences.
    """

    def __call__(self, data: bytes, /, seed: int = 0) -> int:
        """Hash *data* with *seed* to an integer in ``0 .. 2**64 - 1``."""
        ...


class HealthProbe(Protocol):
    """Checks one node once: ``True`` when it is fit to serve.

    A probe may also raise; the checker counts any exception as a failure. It
    should give up after *timeout_s* seconds (the checker counts a late answer
    as a failure either way).
    """

    def __call__(self, node: str, /, *, timeout_s: float) -> bool:
        """Probe *node*, waiting at most *timeout_s* seconds."""
        ...


class HealthTarget(Protocol):
    """What a :class:`~commercekit.balancer.HealthChecker` drives: any balancer of this package."""

    @property
    def name(self) -> str:
        """The balancer's name, the ``balancer`` tag of the checker's metrics."""
        ...

    def health(self, name: str, /) -> NodeHealth:
        """The current health of node *name*."""
        ...

    def node_names(self) -> Sequence[str]:
        """The nodes to probe, in a stable order."""
        ...

    def mark_up(self, name: str, /) -> bool:
        """Put *name* back in service; say whether its health changed."""
        ...

    def mark_down(self, name: str, /) -> bool:
        """Take *name* out of service; say whether its health changed."""
        ...

    def tick(self) -> None:
        """Apply what time alone changes (ejections that ran out, slow starts that ended)."""
        ...


class KeyedBalancer(Protocol):
    """What code that routes by key needs from a balancer; every keyed balancer here has it.

    Depend on this (the repository's shard and replica choice, the CDN's edge
    choice) rather than on one placement, so that the application picks the
    placement.
    """

    def pick(self, key: Key, /) -> str:
        """The node for *key*."""
        ...

    def pick_n(self, key: Key, n: int, /) -> list[str]:
        """Up to *n* distinct nodes for *key*, in preference order."""
        ...

    def acquire(self, key: Key, /) -> Lease:
        """A lease on the key's node under the bounded-load cap."""
        ...

    def acquire_node(self, name: str, /) -> Lease:
        """A lease on node *name*, chosen by the caller (an affinity pick, a failover)."""
        ...

    def report_failure(self, name: str, /) -> None:
        """Count a failed request on node *name*."""
        ...

    def report_success(self, name: str, /) -> None:
        """Reset node *name*'s run of failures."""
        ...
