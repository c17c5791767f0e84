"""Active health checks: rise and fall thresholds, a thread that starts and stops cleanly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from commercekit.balancer import (
    CallableProbe,
    HealthChecker,
    HttpProbe,
    MaglevBalancer,
    NodeHealth,
    OutlierDetection,
    RoundRobinBalancer,
    TcpProbe,
)
from commercekit.errors import ConfigurationError, InvalidStateError
from commercekit.metrics import InMemoryMetrics

from .servers import http_server, tcp_listener


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Wait for a real background thread to act (not to make time pass)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_fall_and_rise_thresholds() -> None:
    up = {"a": True, "b": True}
    balancer = MaglevBalancer(["a", "b"], panic_threshold=0)
    checker = HealthChecker(balancer, CallableProbe(lambda n: up[n]), rise=2, fall=3)
    up["a"] = False
    assert checker.check_now() == {"a": False, "b": True}
    checker.check_now()
    assert balancer.health("a") is NodeHealth.UP
    checker.check_now()
    assert balancer.health("a") is NodeHealth.DOWN
    up["a"] = True
    checker.check_now()
    assert balancer.health("a") is NodeHealth.DOWN
    up["a"] = False  # the run of passes is broken
    checker.check_now()
    up["a"] = True
    checker.check_now()
    checker.check_now()
    assert balancer.health("a") is NodeHealth.UP
    checker.stop()


def test_raising_and_late_probes_fail() -> None:
    release = threading.Event()

    def probe(node: str) -> bool:
        if node == "raises":
            raise OSError("no route")
        if node == "late":
            release.wait(5)
        return True

    balancer = RoundRobinBalancer(["raises", "late", "fine"])
    checker = HealthChecker(balancer, CallableProbe(probe), timeout_s=0.1, fall=1)
    try:
        assert checker.check_now() == {"raises": False, "late": False, "fine": True}
        assert [balancer.health(n) for n in ("raises", "late", "fine")] == [
            NodeHealth.DOWN,
            NodeHealth.DOWN,
            NodeHealth.UP,
        ]
    finally:
        release.set()
        checker.stop()


def test_an_ejected_node_that_fails_checks_goes_down() -> None:
    balancer = MaglevBalancer(
        ["a", "b"], outlier_detection=OutlierDetection(consecutive_failures=1)
    )
    balancer.report_failure("a")
    assert balancer.health("a") is NodeHealth.EJECTED
    checker = HealthChecker(balancer, CallableProbe(lambda n: n != "a"), fall=1)
    checker.check_now()
    assert balancer.health("a") is NodeHealth.DOWN
    checker.stop()


def test_a_node_removed_mid_round_is_ignored() -> None:
    balancer = MaglevBalancer(["a", "b"])

    def probe(node: str) -> bool:
        if node == "a" and "a" in balancer:
            balancer.remove("a")
        return False

    checker = HealthChecker(balancer, CallableProbe(probe), fall=1)
    checker.check_now()
    assert balancer.node_names() == ["b"]
    assert balancer.health("b") is NodeHealth.DOWN
    checker.stop()


def test_background_checks_against_real_tcp_listeners() -> None:
    balancer = MaglevBalancer(panic_threshold=0)
    with tcp_listener() as alive:
        with tcp_listener() as doomed:
            balancer.update([alive, doomed])
            with HealthChecker(
                balancer, TcpProbe(), interval_s=0.02, timeout_s=0.5, rise=1, fall=2
            ) as checker:
                assert checker.running
                assert wait_until(lambda: balancer.health(doomed) is NodeHealth.UP)
            assert not checker.running
            checker.start()  # a stopped checker starts again
        # The doomed listener is closed now: connections are refused.
        assert wait_until(lambda: balancer.health(doomed) is NodeHealth.DOWN)
        assert balancer.health(alive) is NodeHealth.UP
        assert {balancer.pick(f"k{i}") for i in range(100)} == {alive}
        checker.stop()


def test_background_checks_against_a_real_http_server() -> None:
    statuses = {"/healthz": 200}
    with http_server(statuses) as node:
        balancer = RoundRobinBalancer([node], panic_threshold=0)
        metrics = InMemoryMetrics()
        with HealthChecker(balancer, HttpProbe(), interval_s=0.02, rise=2, fall=2, metrics=metrics):
            statuses["/healthz"] = 503
            assert wait_until(lambda: balancer.health(node) is NodeHealth.DOWN)
            statuses["/healthz"] = 204
            assert wait_until(lambda: balancer.health(node) is NodeHealth.UP)
        tags = {"balancer": "default"}
        assert metrics.value("commercekit_balancer_health_checks_total", **tags, result="fail") >= 2
        assert metrics.value("commercekit_balancer_health_checks_total", **tags, result="pass") >= 2


def test_stop_is_prompt_and_leaves_no_thread() -> None:
    balancer = MaglevBalancer(["a"])
    before = threading.active_count()
    checker = HealthChecker(balancer, CallableProbe(lambda n: True), interval_s=60)
    checker.start()
    with pytest.raises(InvalidStateError, match="running already"):
        checker.start()
    assert "running" in repr(checker)
    started = time.monotonic()
    checker.stop()
    assert time.monotonic() - started < 1.0
    assert not checker.running
    assert wait_until(lambda: threading.active_count() <= before)


@pytest.mark.parametrize(
    "kwargs",
    [{"interval_s": 0}, {"timeout_s": -1}, {"rise": 0}, {"fall": 1.5}, {"max_workers": 0}],
)
def test_settings_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        HealthChecker(MaglevBalancer(["a"]), TcpProbe(), **kwargs)  # type: ignore[arg-type]
