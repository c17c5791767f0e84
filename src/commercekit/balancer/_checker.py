"""Active health checks: probe every node each interval; rise and fall thresholds as HAProxy.

A node in service goes DOWN after *fall* failed checks in a row; a DOWN node
comes back after *rise* passed checks in a row (through slow start, if the
balancer has one). An ejected node that fails *fall* checks goes DOWN too; one
that passes waits out its ejection. A check that raises or answers after
*timeout_s* fails.

The checker runs on one background thread, started by :meth:`start` (or
``with checker:``) and stopped by :meth:`stop`, which returns within a round's
timeout: the thread waits on an :class:`threading.Event`, never in ``sleep``.
Probes of one round run in parallel on a small thread pool. :meth:`check_now`
runs one round in the caller's thread, for tests and for a first check
before serving.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from types import TracebackType

from commercekit.errors import ConfigurationError, InvalidStateError
from commercekit.metrics import Metrics, NullMetrics

from ._health import NodeHealth
from ._typing import HealthProbe, HealthTarget

__all__ = ["HealthChecker"]

_log = logging.getLogger("commercekit.balancer")


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be an int of at least 1, got {value!r}")
    return value


def _seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e9:
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


class HealthChecker:
    """Probes the nodes of *target* every *interval_s* and marks them up or down."""

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
        self._max_workers = _count("max_workers", max_workers)
        self._passes: dict[str, int] = {}
        self._fails: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
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

    @property
    def running(self) -> bool:
        """Whether the background thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def check_now(self) -> dict[str, bool]:
        """Run one round now, in this thread: probe every node, apply the thresholds.

        Returns each node's result. Also ends the ejections and slow starts that
        time has run out (``target.tick()``).
        """
        with self._round_lock:
            names = list(self._target.node_names())
            executor = self._pool()
            futures: dict[str, Future[bool]] = {
                name: executor.submit(self._probe, name, timeout_s=self._timeout_s)
                for name in names
            }
            deadline = time.monotonic() + self._timeout_s
            results = {name: self._result(name, f, deadline) for name, f in futures.items()}
            for name, passed in results.items():
                self._apply(name, passed)
            for gone in set(self._passes) - set(names):
                self._passes.pop(gone, None)
                self._fails.pop(gone, None)
            self._target.tick()
            return results

    def _result(self, name: str, future: Future[bool], deadline: float) -> bool:
        try:
            passed = bool(future.result(timeout=max(deadline - time.monotonic(), 0.0)))
        except FutureTimeout:
            passed = False
        except Exception as exc:  # a probe that raises has failed the check
            _log.debug("health probe of %r raised %r", name, exc)
            passed = False
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

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self._max_workers, thread_name_prefix="commercekit-health-probe"
            )
        return self._executor

    def start(self) -> None:
        """Start checking in the background; the first round runs at once."""
        if self.running:
            raise InvalidStateError("this health checker is running already")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"commercekit-health-{self._target.name}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_now()
            except Exception:  # keep checking: one bad round must not end health checks
                _log.exception("health check round of balancer %r failed", self._target.name)
            if self._stop.wait(self._interval_s):
                break

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop the background thread and wait for it (at most *timeout_s*, if given)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self._timeout_s + 1.0 if timeout_s is None else timeout_s)
        with self._round_lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None

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
