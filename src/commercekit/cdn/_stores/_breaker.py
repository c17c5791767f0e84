"""``Breaker``: a circuit breaker that lets a failing store be skipped instead of waited for.

Closed, every call goes through. After *failures* failures in a row it opens:
calls fail at once, without I/O, for *reset_s* seconds. Then it is half-open:
one call (the probe) goes through; its success closes the breaker, its failure
opens it again for another *reset_s*. Time is monotonic (``time.monotonic``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from commercekit.errors import ConfigurationError
from commercekit.typing import MonotonicClock

__all__ = ["Breaker"]


class Breaker:
    """Counts failures in a row; :meth:`allow` says whether the next call may try."""

    __slots__ = ("_clock", "_failed", "_failures", "_on_open", "_open_until", "_probing", "_reset")

    def __init__(
        self,
        *,
        failures: int = 3,
        reset_s: float = 1.0,
        clock: MonotonicClock = time.monotonic,
        on_open: Callable[[], None] | None = None,
    ) -> None:
        if failures < 1:
            raise ConfigurationError(f"breaker failures must be 1 or more, got {failures!r}")
        if not reset_s > 0:
            raise ConfigurationError(f"breaker reset_s must be positive, got {reset_s!r}")
        self._failures = failures
        self._reset = reset_s
        self._clock = clock
        self._on_open = on_open
        self._failed = 0
        self._open_until: float | None = None
        self._probing = False

    @property
    def is_open(self) -> bool:
        """True while calls are refused (open, or half-open with its probe under way)."""
        if self._open_until is None:
            return False
        return self._probing or self._clock() < self._open_until

    def allow(self) -> bool:
        """Say whether a call may go ahead now; a half-open breaker lets one probe through."""
        if self._open_until is None:
            return True
        if self._probing or self._clock() < self._open_until:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        """Record a call that worked: the breaker closes."""
        self._failed = 0
        self._open_until = None
        self._probing = False

    def failure(self) -> None:
        """Record a call that failed; open after enough in a row (or a failed probe)."""
        self._failed += 1
        if self._probing or self._failed >= self._failures:
            if (self._open_until is None or self._probing) and self._on_open is not None:
                self._on_open()  # closed or half-open -> open (not a late failure while open)
            self._open_until = self._clock() + self._reset
            self._probing = False

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"Breaker({state}, failures={self._failures}, reset_s={self._reset})"
