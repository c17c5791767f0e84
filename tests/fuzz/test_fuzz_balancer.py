"""Fuzzing the balancer's outside input: node names, weights, keys, options, probe settings.

Names and weights come from service discovery or config files, keys from
requests: whatever arrives, a balancer answers or raises a ``commercekit.errors``
error within a time bound, and a change it refuses leaves its membership and
its picks as they were.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commercekit.balancer import (
    CappedRingBalancer,
    HealthChecker,
    HttpProbe,
    KetamaBalancer,
    LeastLoadedBalancer,
    MaglevBalancer,
    OutlierDetection,
    RoundRobinBalancer,
    SlowStart,
    TcpProbe,
)
from commercekit.balancer._checking._probes import host_port
from commercekit.errors import CommerceKitError, InvalidInputError
from tests.fuzz.hostile import hostile_bytes, hostile_text, not_a_string, only_ours

EXAMPLES = int(os.environ.get("COMMERCEKIT_FUZZ_EXAMPLES", "30"))
"""Examples per test (30 by default keeps the suite near 10 s; raise it for a long run)."""
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOUND_S = 3.0
"""Per call that builds a placement (the slow part; a loaded machine needs the margin)."""

STEADY = ["web-1", "web-2", "web-3", "web-4"]
PROBE_KEYS = [f"probe-{i}" for i in range(64)]

FACTORIES: dict[str, Callable[..., Any]] = {
    "maglev": lambda nodes=(): MaglevBalancer(nodes, table_size=251),
    "ketama": KetamaBalancer,
    "capped": lambda nodes=(): CappedRingBalancer(nodes, table_bits=12, points=64),
    "round_robin": RoundRobinBalancer,
    "least_loaded": LeastLoadedBalancer,
}
KEYED = ("maglev", "ketama", "capped")

hostile_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=1e300, max_value=1.7e308),
    st.floats(min_value=5e-324, max_value=1e-300),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**5000),
    st.sampled_from([0, -1, True, 1e308, 1e-9, 1e12, 2**63]),
)
any_weight = st.one_of(hostile_number, not_a_string, hostile_text)
any_name = st.one_of(hostile_text, not_a_string, hostile_bytes)
any_key = st.one_of(hostile_text, hostile_bytes, not_a_string, st.tuples(hostile_text))
any_nodes = st.one_of(
    st.lists(any_name, max_size=6),
    st.dictionaries(hostile_text, any_weight, max_size=6),
    st.dictionaries(st.sampled_from([*STEADY, "x"]), hostile_number, max_size=5),
    any_name,
)


def picks(balancer: Any, kind: str) -> list[str] | None:
    if kind not in KEYED:
        return None
    return [balancer.pick(k) for k in PROBE_KEYS]


@pytest.mark.parametrize("kind", list(FACTORIES))
@FUZZ
@given(nodes=any_nodes)
def test_building_from_hostile_nodes(kind: str, nodes: Any) -> None:
    balancer = only_ours(FACTORIES[kind], nodes, bound_s=BOUND_S)
    if balancer is not None:
        for name in balancer.node_names():
            assert isinstance(name, str)


@pytest.mark.parametrize("kind", list(FACTORIES))
@FUZZ
@given(
    data=st.data(),
    change=st.sampled_from(["add", "remove", "update", "set_weight", "mark_down", "mark_up"]),
)
def test_a_refused_change_changes_nothing(kind: str, data: st.DataObject, change: str) -> None:
    balancer = FACTORIES[kind](STEADY)
    members, before = sorted(balancer.node_names()), picks(balancer, kind)
    if change == "add":
        args: tuple[Any, ...] = (data.draw(any_name), data.draw(any_weight))
    elif change == "update":
        args = (data.draw(any_nodes),)
    elif change == "set_weight":
        args = (data.draw(st.one_of(st.sampled_from(STEADY), any_name)), data.draw(any_weight))
    else:
        args = (data.draw(any_name),)
    if refused(getattr(balancer, change), *args):
        assert sorted(balancer.node_names()) == members
        assert picks(balancer, kind) == before


def refused(call: Callable[..., Any], *args: Any) -> bool:
    """Whether *call* raised one of our errors (only ours, within the bound)."""
    done = only_ours(lambda: call(*args) or True, bound_s=BOUND_S)
    return done is None


@pytest.mark.parametrize("kind", KEYED)
@FUZZ
@given(key=any_key, n=st.one_of(st.integers(-5, 10), not_a_string, hostile_number))
def test_hostile_keys(kind: str, key: Any, n: Any) -> None:
    balancer = FACTORIES[kind](STEADY)
    node = only_ours(balancer.pick, key)
    assert node is None or node in STEADY
    chosen = only_ours(balancer.pick_n, key, n)
    assert chosen is None or set(chosen) <= set(STEADY)
    lease = only_ours(balancer.acquire, key)
    if lease is not None:
        assert lease.node in STEADY
        lease.release()
    for method in ("health", "status", "report_failure", "report_success", "acquire_node"):
        only_ours(getattr(balancer, method), key)


@pytest.mark.parametrize("kind", KEYED)
def test_keys_and_names_that_are_not_valid_unicode(kind: str) -> None:
    balancer = FACTORIES[kind](STEADY)
    with pytest.raises(InvalidInputError, match="surrogate"):
        balancer.pick("customer-\ud800")
    with pytest.raises(InvalidInputError, match="surrogate"):
        balancer.add("web-\udcff")
    with pytest.raises(InvalidInputError, match="surrogate"):
        FACTORIES[kind](["web-\ud800"])
    assert sorted(balancer.node_names()) == STEADY


@pytest.mark.parametrize("kind", list(FACTORIES))
@pytest.mark.parametrize(
    "weights",
    [
        {"a": 1e308, "b": 1e308},
        {"a": 1e-308, "b": 1.0},
        {"a": 5e-324, "b": 1.0},
        {"a": 10**400, "b": 1},
        {"a": math.nan, "b": 1.0},
    ],
)
def test_weights_out_of_range_are_refused(kind: str, weights: dict[str, float]) -> None:
    with pytest.raises(InvalidInputError, match="weight must be positive"):
        FACTORIES[kind](weights)


@FUZZ
@given(
    options=st.dictionaries(
        st.sampled_from(
            [
                "consecutive_failures",
                "base_ejection_s",
                "max_ejection_s",
                "max_ejected_fraction",
            ]
        ),
        st.one_of(hostile_number, not_a_string, hostile_text),
        max_size=4,
    ),
    slow=st.dictionaries(
        st.sampled_from(["window_s", "initial_share"]),
        st.one_of(hostile_number, not_a_string),
        max_size=2,
    ),
    balancer_options=st.dictionaries(
        st.sampled_from(["panic_threshold", "balance_factor", "name"]),
        st.one_of(hostile_number, not_a_string, hostile_text),
        max_size=3,
    ),
)
def test_hostile_options(
    options: dict[str, Any], slow: dict[str, Any], balancer_options: dict[str, Any]
) -> None:
    outlier = only_ours(OutlierDetection, **options)
    slow_start = only_ours(SlowStart, **slow)
    only_ours(
        MaglevBalancer,
        STEADY,
        bound_s=BOUND_S,
        table_size=251,
        outlier_detection=outlier,
        slow_start=slow_start,
        **balancer_options,
    )


@FUZZ
@given(
    settings_=st.dictionaries(
        st.sampled_from(["interval_s", "timeout_s", "rise", "fall", "max_workers"]),
        st.one_of(hostile_number, not_a_string),
        max_size=5,
    )
)
def test_hostile_checker_settings(settings_: dict[str, Any]) -> None:
    checker = only_ours(
        HealthChecker, MaglevBalancer(STEADY, table_size=251), TcpProbe(), **settings_
    )
    if checker is not None:
        assert "stopped" in repr(checker)


@FUZZ
@given(
    node=hostile_text, url=st.one_of(hostile_text, hostile_text.map(lambda t: "http://{node}/" + t))
)
def test_hostile_probe_targets(node: str, url: str) -> None:
    only_ours(host_port, node)
    only_ours(TcpProbe().__call__, node, timeout_s=0.05)
    # Whatever the URL template and node, the probe answers, or refuses its set-up.
    answer = only_ours(HttpProbe(url=url).__call__, node, timeout_s=0.05)
    assert answer in (None, True, False)


def test_only_ours_lets_our_errors_through() -> None:
    # The property itself: a foreign exception fails, one of ours passes.
    only_ours(lambda: (_ for _ in ()).throw(InvalidInputError("x")))
    with pytest.raises(ZeroDivisionError):
        only_ours(lambda: 1 / 0)
    assert issubclass(InvalidInputError, CommerceKitError)
