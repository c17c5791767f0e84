"""Types every part of commercekit shares: clocks and sleeps.

Time is injected everywhere, so that tests never sleep to make time pass, and
two kinds of time are injected. The two aliases below are the same callable
type; their names say which one a parameter wants, and the two must not be
swapped:

- :data:`WallClock`, seconds since the Unix epoch (``time.time``): for times
  that other machines compare or that are stored (HTTP ``Date`` and
  ``Expires``, signed-URL expiry, commit times, webhook timestamps). It can
  jump when the machine's clock is set.
- :data:`MonotonicClock`, seconds from an arbitrary start that never goes
  back (``time.monotonic``, ``time.perf_counter``): for intervals and
  deadlines in one process (ejections, slow start, breakers, latencies).

Each part keeps its own seams (``Origin``, ``PaymentGateway``, ``Metrics``,
...) beside its implementations; this module holds only what crosses parts,
and imports none of them.
"""

from __future__ import annotations

import collections.abc as _abc
from typing import TypeAlias as _TypeAlias

__all__ = ["AsyncSleep", "MonotonicClock", "Sleep", "WallClock"]

WallClock: _TypeAlias = _abc.Callable[[], float]
"""Seconds since the Unix epoch (``time.time`` unless a test injects one)."""

MonotonicClock: _TypeAlias = _abc.Callable[[], float]
"""Seconds that never go back, from any start (``time.monotonic``, ``time.perf_counter``)."""

Sleep: _TypeAlias = _abc.Callable[[float], None]
"""Waits the given seconds (``time.sleep`` unless a test injects one)."""

AsyncSleep: _TypeAlias = _abc.Callable[[float], _abc.Awaitable[None]]
"""Waits the given seconds without blocking the event loop (``asyncio.sleep``)."""
