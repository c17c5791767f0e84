"""Per-thread cells: how the in-memory counters and histograms record without a lock.

A lock costs more than everything else a counter increment does, so each
writing thread gets a cell of its own, written by that thread alone; a read
folds the cells together. Cells of threads that have ended are folded into a
base cell, so a server that runs a thread per request does not accumulate
them. The result is exact, not sampled: no write is lost, under the GIL or
without it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Shards"]

_C = TypeVar("_C")

# Dead threads' cells are folded when this many cells exist beyond the last fold.
_FOLD_AFTER = 64


class Shards(Generic[_C]):
    """A cell per writing thread, made by *new*; *fold(into, cell)* adds a finished cell."""

    __slots__ = ("_base", "_cells", "_fold", "_fold_at", "_local", "_lock", "_new")

    def __init__(self, new: Callable[[], _C], fold: Callable[[_C, _C], None]) -> None:
        self._new = new
        self._fold = fold
        self._local = threading.local()
        self._lock = threading.Lock()
        self._base = new()
        self._cells: list[tuple[threading.Thread, _C]] = []
        self._fold_at = _FOLD_AFTER

    def cell(self) -> _C:
        """The calling thread's cell; created (and registered) on its first call."""
        try:
            cell: _C = self._local.cell
        except AttributeError:
            cell = self._register()
        return cell

    @property
    def local(self) -> threading.local:
        """The thread-local holder whose ``cell`` attribute is the calling thread's cell.

        Hot paths read ``local.cell`` directly and call :meth:`cell` only when the
        attribute is missing, to save a method call.
        """
        return self._local

    def collect(self, copy: Callable[[_C], _C]) -> list[_C]:
        """Copies of the base cell and of every live cell, made by *copy*."""
        with self._lock:
            return [copy(self._base), *(copy(cell) for _, cell in self._cells)]

    def _register(self) -> _C:
        cell = self._new()
        self._local.cell = cell
        with self._lock:
            self._cells.append((threading.current_thread(), cell))
            if len(self._cells) >= self._fold_at:
                self._fold_dead()
        return cell

    def _fold_dead(self) -> None:
        live: list[tuple[threading.Thread, _C]] = []
        for thread, cell in self._cells:
            if thread.is_alive():
                live.append((thread, cell))
            else:
                self._fold(self._base, cell)
        self._cells = live
        self._fold_at = len(live) + _FOLD_AFTER
