"""Units: their UCUM spelling for OpenTelemetry, and default histogram buckets per unit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["default_buckets", "ucum"]

_UCUM = {"seconds": "s", "bytes": "By", "1": "1", "": "1"}

# Latencies from half a millisecond to a minute, about 2.5x apart.
_SECONDS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
_SECONDS += (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Sizes from 1 KiB to 1 GiB, 4x apart.
_BYTES = tuple(float(4**k * 1024) for k in range(11))
# Plain counts (items in a batch, attempts): 1 to 1000, about 2-2.5x apart.
_COUNTS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)


def ucum(unit: str) -> str:
    """The UCUM code of *unit* ("seconds" -> "s"); others as a UCUM annotation ("{items}")."""
    return _UCUM.get(unit, f"{{{unit}}}")


def default_buckets(
    name: str, unit: str, overrides: Mapping[str, Sequence[float]] | None = None
) -> tuple[float, ...]:
    """Bucket upper bounds for histogram *name*: the override if given, else by *unit*."""
    if overrides and name in overrides:
        return tuple(float(bound) for bound in overrides[name])
    if unit == "seconds":
        return _SECONDS
    if unit == "bytes":
        return _BYTES
    return _COUNTS
