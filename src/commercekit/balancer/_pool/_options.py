"""Immutable settings for passive outlier detection and slow start."""

from __future__ import annotations

import attrs

from commercekit.balancer._shown import shown
from commercekit.errors import ConfigurationError

__all__ = ["OutlierDetection", "SlowStart", "check_balance_factor", "check_panic_threshold"]


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"{name} must be a positive number, got {shown(value)}")
    if not value < 1e15:  # inf, and numbers too large to mean seconds or a float
        raise ConfigurationError(f"{name} must be finite (under 1e15), got {shown(value)}")


@attrs.frozen
class OutlierDetection:
    """Eject a node after *consecutive_failures* failures reported in a row, like Envoy.

    The first ejection lasts *base_ejection_s*; each further ejection lasts one
    *base_ejection_s* longer (two, three, ... times the base), up to
    *max_ejection_s*. The multiplier falls back by one for every
    *base_ejection_s* a node goes without being ejected. At most
    *max_ejected_fraction* of the nodes are ejected at once (but always at
    least one may be), so a wave of errors cannot empty the pool.
    """

    consecutive_failures: int = 5
    base_ejection_s: float = 30.0
    max_ejection_s: float = 300.0
    max_ejected_fraction: float = 0.1

    def __attrs_post_init__(self) -> None:
        if (
            isinstance(self.consecutive_failures, bool)
            or not isinstance(self.consecutive_failures, int)
            or self.consecutive_failures < 1
        ):
            raise ConfigurationError(
                f"consecutive_failures must be an int of at least 1, "
                f"got {shown(self.consecutive_failures)}"
            )
        _positive("base_ejection_s", self.base_ejection_s)
        _positive("max_ejection_s", self.max_ejection_s)
        if self.max_ejection_s < self.base_ejection_s:
            raise ConfigurationError(
                f"max_ejection_s ({self.max_ejection_s}) must be at least "
                f"base_ejection_s ({self.base_ejection_s})"
            )
        fraction = self.max_ejected_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float)
            or not 0 < fraction <= 1
        ):
            raise ConfigurationError(
                f"max_ejected_fraction must be in (0, 1], got {shown(fraction)}"
            )

    def ejection_s(self, multiplier: int) -> float:
        """How long the *multiplier*-th ejection in a row lasts."""
        return min(self.base_ejection_s * multiplier, self.max_ejection_s)


@attrs.frozen
class SlowStart:
    """A node that joins or recovers takes its share gradually over *window_s* seconds.

    Its share of its own keys starts at *initial_share* and grows linearly to
    all of them. Which keys it takes is decided per key and only grows: a key
    hashed to ``u`` in ``[0, 1)`` goes to the node once its share passes
    ``u``, and stays. The keys it does not take yet go where they went while it
    was away.
    """

    window_s: float = 30.0
    initial_share: float = 0.1

    def __attrs_post_init__(self) -> None:
        _positive("window_s", self.window_s)
        share = self.initial_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
            raise ConfigurationError(f"initial_share must be in [0, 1), got {shown(share)}")

    def share(self, elapsed_s: float) -> float:
        """The share of its keys a node takes *elapsed_s* seconds into its window."""
        if elapsed_s >= self.window_s:
            return 1.0
        if elapsed_s <= 0:
            return self.initial_share
        return self.initial_share + (1.0 - self.initial_share) * (elapsed_s / self.window_s)


def check_panic_threshold(value: float) -> float:
    """Return *value* if it is a fraction in ``[0, 1]``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigurationError(
            f"panic_threshold must be a fraction in [0, 1], got {shown(value)}; "
            f"0 turns panic mode off"
        )
    return float(value)


def check_balance_factor(value: float) -> float:
    """Return *value* if it is a usable bounded-load factor ``c`` (above 1, at most 10)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 < value <= 10:
        raise ConfigurationError(
            f"balance_factor must be above 1 and at most 10 (1.1 to 2.0 is usual), "
            f"got {shown(value)}"
        )
    return float(value)
