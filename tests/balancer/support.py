"""Helpers shared by the balancer tests: a clock tests move by hand, key sets, mappings."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from commercekit.balancer import CappedRingBalancer


class FakeClock:
    """A monotonic clock that only moves when a test calls :meth:`advance`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def keys(n: int, prefix: str = "customer") -> list[str]:
    """*n* distinct keys."""
    return [f"{prefix}-{i}" for i in range(n)]


def names(n: int, prefix: str = "node") -> list[str]:
    """*n* distinct node names."""
    return [f"{prefix}-{i}" for i in range(n)]


def mapping(pick: Callable[[str], str], keys: Iterable[str]) -> dict[str, str]:
    """Where each key goes."""
    return {key: pick(key) for key in keys}


def moved(before: dict[str, str], after: dict[str, str]) -> set[str]:
    """The keys whose node changed."""
    return {key for key, node in before.items() if after[key] != node}


def small_capped(nodes: object = (), **kwargs: object) -> CappedRingBalancer:
    """A CappedRingBalancer with a small table, so that tests build it in milliseconds."""
    return CappedRingBalancer(nodes, table_bits=14, points=256, **kwargs)  # type: ignore[arg-type]
