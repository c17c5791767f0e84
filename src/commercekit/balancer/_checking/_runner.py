"""The threads health probes run on: a hung probe costs its own thread, never a shared one.

A :class:`ProbeRunner` keeps up to *size* worker threads that take probes from a
queue. A probe's deadline starts when a worker starts it, so a probe that waits
in the queue behind others still gets its whole timeout. A probe still running
at its deadline is *abandoned*: its worker leaves the pool (it ends when the
call returns) and a new worker takes its place, so one hung probe never holds
a worker the other nodes' probes need.

Python cannot stop a thread, so a probe function that never returns keeps its
(daemon) thread for ever; the checker bounds that to one thread per node by not
probing a node again while its last probe runs. The shipped TCP and HTTP probes
end by their deadline on their own, so they leave no thread behind.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from commercekit.errors import InvalidStateError

__all__ = ["ProbeRunner", "ProbeTask"]

JOIN_S = 1.0
"""How long :meth:`ProbeRunner.close` waits for each live worker."""


class ProbeTask:
    """One probe call: its node, its outcome, and when a worker started it."""

    __slots__ = ("abandoned", "call", "done", "error", "node", "result", "started", "worker")

    def __init__(self, node: str, call: Callable[[], bool]) -> None:
        self.node = node
        self.call = call
        self.started: float | None = None
        self.worker: threading.Thread | None = None
        self.done = threading.Event()
        self.result: bool | None = None
        self.error: BaseException | None = None
        self.abandoned = False


class ProbeRunner:
    """Up to *size* worker threads for probe calls; an overrunning call loses its thread."""

    def __init__(
        self,
        size: int,
        *,
        name: str,
        on_abandoned: Callable[[int], None] | None = None,
    ) -> None:
        self._size = size
        self._name = name
        self._on_abandoned = on_abandoned
        self._cond = threading.Condition(threading.Lock())
        self._queue: collections.deque[ProbeTask] = collections.deque()
        self._workers: set[threading.Thread] = set()
        self._idle = 0
        self._abandoned = 0
        self._closed = False

    @property
    def abandoned(self) -> int:
        """Threads still running a probe that overran its deadline."""
        return self._abandoned

    def submit(self, task: ProbeTask) -> None:
        """Queue *task*; start a worker if none is free and the pool is not full."""
        with self._cond:
            if self._closed:
                raise InvalidStateError("this probe runner is closed")
            self._queue.append(task)
            if self._idle == 0 and len(self._workers) < self._size:
                self._spawn()
            else:
                self._cond.notify()

    def wait(self, task: ProbeTask, timeout_s: float) -> bool:
        """Wait for *task* until *timeout_s* after a worker started it.

        Returns whether it finished. A task still running then is abandoned.
        """
        while True:
            started = task.started
            if started is None:
                if task.done.wait(timeout_s):  # still queued: wait for a worker to start it
                    return True
                continue
            remaining = started + timeout_s - time.monotonic()
            if task.done.wait(max(remaining, 0.0)):
                return True
            with self._cond:
                if task.done.is_set():
                    return True
                task.abandoned = True
                if task.worker is not None:
                    self._workers.discard(task.worker)
                self._abandoned += 1
                if self._queue and not self._closed and self._idle == 0:
                    self._spawn()
            self._report(1)
            return False

    def close(self, join_s: float = JOIN_S) -> None:
        """Stop the workers: queued tasks are dropped, live workers are joined (bounded)."""
        with self._cond:
            self._closed = True
            dropped = list(self._queue)
            self._queue.clear()
            workers = list(self._workers)
            self._cond.notify_all()
        for task in dropped:
            task.done.set()
        deadline = time.monotonic() + join_s
        for worker in workers:
            if worker is not threading.current_thread():
                worker.join(max(deadline - time.monotonic(), 0.0))

    def _spawn(self) -> None:
        # Called with the lock held. Daemon threads: a hung probe must not block exit.
        worker = threading.Thread(target=self._work, name=self._name, daemon=True)
        self._workers.add(worker)
        worker.start()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._idle += 1
                    self._cond.wait()
                    self._idle -= 1
                if self._closed and not self._queue:
                    self._workers.discard(me)
                    return
                task = self._queue.popleft()
                task.worker = me
                task.started = time.monotonic()
            try:
                task.result = bool(task.call())
            except BaseException as exc:  # handed to the waiting round
                task.error = exc
            with self._cond:
                task.done.set()
                if not task.abandoned:
                    continue
                self._abandoned -= 1
            self._report(-1)
            return  # a replacement took this worker's place

    def _report(self, delta: int) -> None:
        if self._on_abandoned is not None:
            self._on_abandoned(delta)
