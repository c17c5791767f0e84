"""Active health checks: probe every node each interval; rise and fall thresholds as HAProxy.

A node in service goes DOWN after *fall* failed checks in a row; a DOWN node
comes back after *rise* passed checks in a row (through slow start, if the
balancer has one). An ejected node that fails *fall* checks goes DOWN too; one
that passes waits out its ejection. A check that raises or answers after
*timeout_s* fails.

One slow node never takes the others down. Each check has a deadline of its
own, *timeout_s* after a worker starts it (so a check that waited for a
worker still gets its whole timeout). A check still running at its deadline
(plus a short grace) *overruns*: it fails, for its own node only, and its
thread is abandoned and replaced, so it holds no worker the other nodes need.
A node whose last check is still running is not checked again; that round
counts it as another overrun. So a probe function that never returns keeps at
most one (daemon) thread per node; the shipped :class:`TcpProbe` and
:class:`HttpProbe` end by their deadline and keep none.

The checker runs on one background thread, started by :meth:`start` (or
``with checker:``) and stopped by :meth:`stop`, which returns within a round's
timeout: the thread waits on an :class:`threading.Event`, never in ``sleep``.
:meth:`check_now` runs one round in the caller's thread, for tests and for a
first check before serving. A checker still running when the interpreter exits
is stopped quietly.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable
from types import TracebackType

from commercekit.balancer._pool._health import NodeHealth
from commercekit.balancer._shown import shown
from commercekit.balancer._typing import HealthProbe, HealthTarget
from commercekit.errors import ConfigurationError, InvalidStateError
from commercekit.metrics import Metrics, NullMetrics

from ._runner import ProbeRunner, ProbeTask

__all__ = ["HealthChecker"]

_log = logging.getLogger("commercekit.balancer")

GRACE_S = 0.05
"""How long past *timeout_s* a check may take before it counts as an overrun."""

_running: weakref.WeakSet[HealthChecker] = weakref.WeakSet()
_exit_hook = threading.Lock()
_exit_hook_registered = False


def _stop_at_exit() -> None:
    for checker in list(_running):
        checker._halt()


def _register_exit_hook() -> None:
    global _exit_hook_registered
    with _exit_hook:
        if not _exit_hook_registered:
            atexit.register(_stop_at_exit)
            _exit_hook_registered = True


def _count(name: str, value: int, most: int = 1000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ConfigurationError(f"{name} must be an int from 1 to {most}, got {shown(value)}")
    return value


def _seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e9:
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {shown(value)}")
    return float(value)


class HealthChecker:
    """Probes the nodes of *target* every *interval_s* and marks them up or down.

    *max_workers* threads run the probes of a round in parallel; a probe that
    overruns its deadline gives up its thread (see the module notes).
    """

    def __init__(
        self,
        target: HealthTarget,
        probe: HealthProbe,
        *,
        interval_s: float = 2.0,
        timeout_s: float = 1.0,
        rise: int = 2,
        fall: int = 3,
        max_workers: int = 8,
        metrics: Metrics | None = None,
    ) -> None:
        self._target = target
        self._probe = probe
        self._interval_s = _seconds("interval_s", interval_s)
        self._timeout_s = _seconds("timeout_s", timeout_s)
        self._rise = _count("rise", rise)
        self._fall = _count("fall", fall)
        self._max_workers = _count("max_workers", max_workers, 256)
        self._passes: dict[str, int] = {}
        self._fails: dict[str, int] = {}
        self._in_flight: dict[str, ProbeTask] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._runner: ProbeRunner | None = None
        self._round_lock = threading.Lock()
        metrics = NullMetrics() if metrics is None else metrics
        tags = {"balancer": target.name}
        self._checks = {
            result: metrics.counter(
                "commercekit_balancer_health_checks_total",
                description="Active health checks run, by result (pass or fail).",
                tags={**tags, "result": result},
            )
            for result in ("pass", "fail")
        }
        self._overruns = metrics.counter(
            "commercekit_balancer_health_check_overruns_total",
            description="Health checks that did not answer by their deadline (counted as failed).",
            tags=tags,
        )
        self._abandoned = metrics.gauge(
            "commercekit_balancer_health_probes_abandoned",
            description="Probe threads still running a check that overran its deadline.",
            tags=tags,
        )

    @property
    def running(self) -> bool:
        """Whether the background thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def check_now(self) -> dict[str, bool]:
        """Run one round now, in this thread: probe every node, apply the thresholds.

        Returns each node's result. Also ends the ejections and slow starts that
        time has run out (``target.tick()``). A round takes at most about
        ``ceil(nodes / max_workers) * timeout_s``, however the probes behave.
        """
        with self._round_lock:
            names = list(self._target.node_names())
            runner = self._pool()
            tasks: dict[str, ProbeTask | None] = {}
            for name in names:
                running = self._in_flight.get(name)
                if running is not None and not running.done.is_set():
                    tasks[name] = None  # its last check still runs: another overrun
                    continue
                task = ProbeTask(name, self._call(name))
                runner.submit(task)
                self._in_flight[name] = task
                tasks[name] = task
            results = {name: self._result(runner, name, task) for name, task in tasks.items()}
            if any(t is not None and t.started is None for t in tasks.values()):
                raise InvalidStateError("this health checker was stopped during the round")
            for name, passed in results.items():
                self._apply(name, passed)
            for gone in set(self._passes) | set(self._in_flight):
                if gone not in results:
                    self._passes.pop(gone, None)
                    self._fails.pop(gone, None)
                    self._in_flight.pop(gone, None)
            self._target.tick()
            return results

    def _call(self, name: str) -> Callable[[], bool]:
        probe, timeout_s = self._probe, self._timeout_s

        def call() -> bool:
            started = time.monotonic()
            passed = bool(probe(name, timeout_s=timeout_s))
            return passed and time.monotonic() - started <= timeout_s

        return call

    def _result(self, runner: ProbeRunner, name: str, task: ProbeTask | None) -> bool:
        if task is None or not runner.wait(task, self._timeout_s + GRACE_S):
            self._overruns.inc()
            passed = False
        elif task.error is not None:
            if isinstance(task.error, ConfigurationError):
                _log.warning("health probe of %r is misconfigured: %s", name, task.error)
            else:  # a probe that raises has failed the check
                _log.debug("health probe of %r raised %r", name, task.error)
            passed = False
        else:
            passed = task.result is True
        self._checks["pass" if passed else "fail"].inc()
        return passed

    def _apply(self, name: str, passed: bool) -> None:
        if passed:
            self._passes[name] = self._passes.get(name, 0) + 1
            self._fails[name] = 0
        else:
            self._fails[name] = self._fails.get(name, 0) + 1
            self._passes[name] = 0
        try:
            health = self._target.health(name)
            if not passed and health is not NodeHealth.DOWN and self._fails[name] >= self._fall:
                self._target.mark_down(name)
            elif passed and health is NodeHealth.DOWN and self._passes[name] >= self._rise:
                self._target.mark_up(name)
        except LookupError:
            pass  # removed while we probed it

    def _pool(self) -> ProbeRunner:
        if self._runner is None:
            self._runner = ProbeRunner(
                self._max_workers,
                name=f"commercekit-health-probe-{self._target.name}",
                on_abandoned=self._abandoned.add,
            )
        return self._runner

    def start(self) -> None:
        """Start checking in the background; the first round runs at once."""
        if self.running:
            raise InvalidStateError("this health checker is running already")
        _register_exit_hook()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"commercekit-health-{self._target.name}", daemon=True
        )
        _running.add(self)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_now()
            except Exception:  # keep checking: one bad round must not end health checks
                if self._stop.is_set():
                    break  # stopped mid-round (at interpreter exit, say): nothing to report
                _log.exception("health check round of balancer %r failed", self._target.name)
            if self._stop.wait(self._interval_s):
                break

    def _halt(self) -> None:
        """Stop at once without waiting for anything (at interpreter exit)."""
        self._stop.set()
        runner = self._runner
        if runner is not None:
            runner.close(join_s=0.0)

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop the background thread and the probe threads, and wait for them.

        Waits at most *timeout_s* (by default about one round). Afterwards no
        thread of this checker runs, except one per node whose probe function
        overran and has not returned yet (never one of a :class:`TcpProbe` or
        :class:`HttpProbe`); those end when the function returns.
        """
        self._stop.set()
        _running.discard(self)
        thread, self._thread = self._thread, None
        runner = self._runner
        if runner is not None:
            runner.close(join_s=0.0)  # the running round ends at once: no new checks
        limit = self._timeout_s + GRACE_S + 1.0 if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        if thread is not None and thread is not threading.current_thread():
            thread.join(limit)
        with self._round_lock:
            if self._runner is not None:
                self._runner.close(join_s=max(deadline - time.monotonic(), 0.0))
                self._runner = None

    def __enter__(self) -> HealthChecker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"<HealthChecker {self._target.name!r} {state} every {self._interval_s}s "
            f"rise={self._rise} fall={self._fall}>"
        )
