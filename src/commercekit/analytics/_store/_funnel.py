"""Funnels: ordered steps within a conversion window (pure policy, no I/O).

A customer enters a funnel at the first time they do its first step (t1).
Step k is reached at the earliest time t_k of a step-k event with
t_k >= t_(k-1) and t_k <= t1 + window, as in Amplitude's and PostHog's
"ordered, within window" funnels. Each customer counts once per funnel, on
the UTC day they entered. The result depends only on the set of events, never
on the order they arrive in, so redelivery and reordering cannot change it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence

import attrs

from commercekit.errors import InvalidInputError, UnsupportedTypeError

__all__ = ["FunnelSpec", "progress"]


def _steps(value: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise UnsupportedTypeError("funnel steps are a sequence of event names, not one str")
    steps = tuple(value)
    if not steps:
        raise InvalidInputError("a funnel needs at least one step")
    if len(set(steps)) != len(steps):
        raise InvalidInputError(f"funnel steps must differ from each other, got {steps}")
    for s in steps:
        if not isinstance(s, str) or not s:
            raise InvalidInputError(f"a funnel step is an event name, got {s!r}")
    return steps


@attrs.frozen
class FunnelSpec:
    """A named funnel: event names in order and a conversion window in seconds."""

    name: str
    steps: tuple[str, ...] = attrs.field(converter=_steps)
    window_s: int = 86_400

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or len(self.name) > 100:
            raise InvalidInputError(f"a funnel name is 1 to 100 characters, got {self.name!r}")
        w = self.window_s
        if isinstance(w, bool) or not isinstance(w, int):
            raise UnsupportedTypeError(f"a funnel window is an int of seconds, got {w!r}")
        if w <= 0:
            raise InvalidInputError(f"a funnel window is positive, got {w} s")

    def index(self, event_name: str) -> int | None:
        """The step number (0-based) of *event_name*, or None."""
        try:
            return self.steps.index(event_name)
        except ValueError:
            return None


def progress(
    times_by_step: Mapping[int, Sequence[int]], n_steps: int, window_ms: int
) -> tuple[int, int, int | None] | None:
    """(entry time, steps reached, ms from entry to the last step or None); None if not entered.

    *times_by_step* maps a step number to its event times (ms, any order).
    """
    first = times_by_step.get(0)
    if not first:
        return None
    t1 = min(first)
    deadline = t1 + window_ms
    t = t1
    reached = 1
    for k in range(1, n_steps):
        times = sorted(times_by_step.get(k, ()))
        i = bisect_left(times, t)
        if i == len(times) or times[i] > deadline:
            break
        t = times[i]
        reached += 1
    return t1, reached, (t - t1) if reached == n_steps else None
