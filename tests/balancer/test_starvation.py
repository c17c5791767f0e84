"""One hung or slow node must never take the other nodes down, and stop() leaves no thread.

The full 60 s run of the starvation scenario is marked ``slow`` and runs with
``COMMERCEKIT_SLOW=1``; a 6 s run of the same scenario runs by default.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from commercekit.balancer import (
    CallableProbe,
    HealthChecker,
    HttpProbe,
    MaglevBalancer,
    NodeHealth,
)
from commercekit.metrics import InMemoryMetrics

from .servers import http_server, slow_drip_server

HEALTHY = [f"healthy-{i:02}" for i in range(20)]


class RecordingBalancer(MaglevBalancer):
    """A Maglev balancer that remembers every node marked down."""

    def __init__(self, nodes: list[str]) -> None:
        super().__init__(nodes, panic_threshold=0)
        self.downs: list[str] = []

    def mark_down(self, node: str) -> None:
        self.downs.append(node)
        super().mark_down(node)


def settle(before: int, timeout_s: float = 5.0) -> int:
    deadline = time.monotonic() + timeout_s
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    return threading.active_count()


def test_a_hung_callable_probe_takes_down_only_its_own_node() -> None:
    release = threading.Event()

    def probe(node: str) -> bool:
        if node == "hung":
            release.wait(30)
        return True

    balancer = RecordingBalancer(["hung", "a", "b", "c"])
    before = threading.active_count()
    # The checker's defaults (pool size, rise, fall), a short timeout to keep the test short.
    checker = HealthChecker(balancer, CallableProbe(probe), timeout_s=0.2)
    try:
        for _ in range(12):  # more rounds than the default pool has workers
            results = checker.check_now()
            assert results == {"hung": False, "a": True, "b": True, "c": True}
        assert set(balancer.downs) == {"hung"}
        assert [balancer.health(n) for n in "abc"] == [NodeHealth.UP] * 3
        assert balancer.pick("key") in {"a", "b", "c"}
        # A node with a probe still running is not probed again: one thread stays behind.
        assert threading.active_count() <= before + 1 + 8
    finally:
        checker.stop()
        release.set()
    assert settle(before) <= before


def test_overruns_are_counted() -> None:
    release = threading.Event()
    metrics = InMemoryMetrics()
    balancer = MaglevBalancer(["hung", "fine"])
    checker = HealthChecker(
        balancer,
        CallableProbe(lambda n: release.wait(10) if n == "hung" else True),
        timeout_s=0.1,
        metrics=metrics,
    )
    try:
        checker.check_now()
        checker.check_now()
        assert (
            metrics.value("commercekit_balancer_health_check_overruns_total", balancer="default")
            == 2
        )
        assert (
            metrics.value("commercekit_balancer_health_probes_abandoned", balancer="default") == 1
        )
    finally:
        checker.stop()
        release.set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if metrics.value("commercekit_balancer_health_probes_abandoned", balancer="default") == 0:
            break
        time.sleep(0.01)
    assert metrics.value("commercekit_balancer_health_probes_abandoned", balancer="default") == 0


class MixedProbe:
    """HTTP probes of real loopback servers; the node named "hung" never answers."""

    def __init__(self, addresses: dict[str, str], release: threading.Event) -> None:
        self.http = HttpProbe(url=lambda node: f"http://{addresses[node]}/healthz")
        self.release = release

    def __call__(self, node: str, /, *, timeout_s: float) -> bool:
        if node == "hung":
            self.release.wait(120)
            return True
        return self.http(node, timeout_s=timeout_s)


@contextmanager
def fleet() -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        healthy = stack.enter_context(http_server({"/healthz": 200}))
        drip = stack.enter_context(slow_drip_server(every_s=0.5, limit_s=120))
        addresses = dict.fromkeys(HEALTHY, healthy)
        addresses["drip"] = drip
        addresses["hung"] = healthy  # never used: its probe hangs before any request
        yield addresses


def starvation(duration_s: float, *, interval_s: float, timeout_s: float) -> None:
    release = threading.Event()
    before = threading.active_count()
    with fleet() as addresses:
        balancer = RecordingBalancer(["hung", "drip", *HEALTHY])
        servers = threading.active_count()
        checker = HealthChecker(
            balancer, MixedProbe(addresses, release), interval_s=interval_s, timeout_s=timeout_s
        )
        try:
            checker.start()
            deadline = time.monotonic() + duration_s
            while time.monotonic() < deadline:
                assert not set(balancer.downs) - {"hung", "drip"}, balancer.downs
                time.sleep(0.05)
            assert balancer.health("hung") is NodeHealth.DOWN
            assert balancer.health("drip") is NodeHealth.DOWN
            assert all(balancer.health(n) is NodeHealth.UP for n in HEALTHY)
        finally:
            checker.stop()
        assert not checker.running
        # Only the probe thread stuck in the hung function is left, until it returns.
        assert settle(servers + 1) <= servers + 1
        release.set()
        assert settle(servers) <= servers
    assert settle(before) <= before


def test_starvation_short() -> None:
    starvation(6.0, interval_s=0.25, timeout_s=0.5)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("COMMERCEKIT_SLOW") != "1", reason="set COMMERCEKIT_SLOW=1")
def test_starvation_60s_with_default_settings() -> None:
    starvation(60.0, interval_s=2.0, timeout_s=1.0)


def test_a_checker_running_at_interpreter_exit_exits_quietly() -> None:
    script = textwrap.dedent(
        """
        import threading, time
        from commercekit.balancer import CallableProbe, HealthChecker, MaglevBalancer

        hang = threading.Event()
        def probe(node):
            if node == "hung":
                hang.wait()
            time.sleep(0.01)
            return True

        balancer = MaglevBalancer([f"n{i}" for i in range(30)] + ["hung"])
        checker = HealthChecker(balancer, CallableProbe(probe), interval_s=0.001, timeout_s=0.05)
        checker.start()
        time.sleep(0.3)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
