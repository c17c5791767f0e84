"""What the repository knows about each replica: ejections, lag, replayed positions.

A small, thread-safe book updated by the read path (failures, token waits) and
by probes (lag, positions), and read as :class:`ReplicaView` snapshots for the
pure routing core. Passive ejection: a failed replica is out for ``eject_s``,
doubling with each consecutive failure up to ``max_eject_s``; after that it
gets one trial read (or a probe brings it back early).
"""

from __future__ import annotations

import threading

import attrs

from ._position import Position, later
from ._routing import ReplicaView
from ._typing import ReplicaStatus

__all__ = ["ReplicaBook"]


@attrs.define
class _State:
    failures: int = 0
    ejected_until_s: float | None = None
    lag_s: float | None = None
    replayed: Position | None = None
    wait_failed_at_s: float | None = None
    replicating: bool = True


class ReplicaBook:
    """Per-replica health and progress, shared by every thread of one :class:`Database`."""

    def __init__(
        self, names: list[str], *, eject_s: float = 1.0, max_eject_s: float = 30.0
    ) -> None:
        self._lock = threading.Lock()
        self._states = {name: _State() for name in names}
        self._eject_s = eject_s
        self._max_eject_s = max_eject_s

    def views(self, names: list[str], now_s: float) -> list[ReplicaView]:
        """Snapshots of *names*, in that order."""
        with self._lock:
            return [self._view(name, self._states[name], now_s) for name in names]

    @staticmethod
    def _view(name: str, s: _State, now_s: float) -> ReplicaView:
        ejected = s.ejected_until_s is not None and now_s < s.ejected_until_s
        return ReplicaView(
            name=name,
            available=s.replicating and not ejected,
            lag_s=s.lag_s,
            replayed=s.replayed,
            wait_failed_at_s=s.wait_failed_at_s,
        )

    def report_failure(self, name: str, now_s: float) -> bool:
        """Eject *name* after a failure; return True if it was in rotation until now."""
        with self._lock:
            s = self._states[name]
            was_in = s.ejected_until_s is None or now_s >= s.ejected_until_s
            s.failures += 1
            backoff = min(self._eject_s * 2 ** min(s.failures - 1, 16), self._max_eject_s)
            s.ejected_until_s = now_s + backoff
            return was_in

    def report_success(self, name: str) -> None:
        """A read on *name* worked: forget its failures."""
        s = self._states[name]
        if s.failures or s.ejected_until_s is not None:
            with self._lock:
                s.failures = 0
                s.ejected_until_s = None

    def record_replayed(self, name: str, position: Position) -> None:
        """*name* was seen to have replayed *position*."""
        with self._lock:
            s = self._states[name]
            s.replayed = position if s.replayed is None else later(s.replayed, position)
            s.wait_failed_at_s = None

    def record_wait_timeout(self, name: str, now_s: float) -> None:
        """A token wait on *name* timed out."""
        with self._lock:
            self._states[name].wait_failed_at_s = now_s

    def record_status(self, name: str, status: ReplicaStatus) -> None:
        """A probe reached *name* and found *status*."""
        with self._lock:
            s = self._states[name]
            s.failures = 0
            s.ejected_until_s = None
            s.lag_s = status.lag_s
            s.replicating = status.replicating
            if status.replayed is not None:
                # A probe's reading is the truth (a rebuilt replica may be behind
                # what was cached), so it replaces rather than merges.
                s.replayed = status.replayed
                if status.lag_s is not None and status.lag_s == 0:
                    s.wait_failed_at_s = None
