"""MaglevBalancer and KetamaBalancer: the keyed API, its errors, and table swaps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from xxhash import xxh64_intdigest

from commercekit.balancer import KetamaBalancer, MaglevBalancer, NodeHealth
from commercekit.balancer._keyed import KeyedPool
from commercekit.errors import (
    ConfigurationError,
    DuplicateError,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
)

from .support import keys, mapping, moved, names, small_capped

Factory = Callable[..., KeyedPool]
PLACEMENTS = [
    pytest.param(MaglevBalancer, id="maglev"),
    pytest.param(KetamaBalancer, id="ketama"),
    pytest.param(small_capped, id="capped"),
]


@pytest.mark.parametrize("make", PLACEMENTS)
def test_picks_are_stable_and_spread(make: Factory) -> None:
    balancer = make(names(10))
    first = mapping(balancer.pick, keys(20_000))
    assert first == mapping(balancer.pick, keys(20_000))
    counts = Counter(first.values())
    assert set(counts) == set(names(10))
    assert max(counts.values()) < 1.4 * 2000


@pytest.mark.parametrize("make", PLACEMENTS)
def test_text_and_bytes_keys_agree(make: Factory) -> None:
    balancer = make(names(7))
    for key in keys(500):
        assert balancer.pick(key) == balancer.pick(key.encode())
        assert balancer.pick(key) == balancer.pick(bytearray(key.encode()))  # type: ignore[arg-type]


@pytest.mark.parametrize("make", PLACEMENTS)
def test_an_empty_balancer_is_unavailable(make: Factory) -> None:
    balancer = make()
    with pytest.raises(UnavailableError, match="no nodes"):
        balancer.pick("k")
    with pytest.raises(UnavailableError, match="no nodes"):
        balancer.acquire("k")
    balancer.add("only")
    assert balancer.pick("k") == "only"
    balancer.remove("only")
    with pytest.raises(UnavailableError):
        balancer.pick("k")


@pytest.mark.parametrize("make", PLACEMENTS)
def test_bad_membership_input_gets_typed_errors(make: Factory) -> None:
    balancer = make(["a", "b"])
    with pytest.raises(DuplicateError, match="'a' is already"):
        balancer.add("a")
    with pytest.raises(NotFoundError, match="no node 'zz'"):
        balancer.remove("zz")
    with pytest.raises(NotFoundError):
        balancer.mark_down("zz")
    with pytest.raises(NotFoundError):
        balancer.report_failure("zz")
    with pytest.raises(NotFoundError):
        balancer.status("zz")
    for weight in (0, -1, float("nan"), float("inf")):
        with pytest.raises(InvalidInputError, match="weight must be positive"):
            balancer.add("c", weight)
    with pytest.raises(InvalidInputError, match="must be a number"):
        balancer.add("c", "2")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="non-empty str"):
        balancer.add("")
    with pytest.raises(DuplicateError, match="listed twice"):
        make(["a", "a"])
    with pytest.raises(InvalidInputError, match="single str"):
        make("abc")
    with pytest.raises(InvalidInputError, match="positive"):
        make({"a": 0.0})
    assert balancer.node_names() == ["a", "b"]  # nothing half-done


@pytest.mark.parametrize("make", PLACEMENTS)
def test_bad_settings_get_configuration_errors(make: Factory) -> None:
    with pytest.raises(ConfigurationError, match="panic_threshold"):
        make(["a"], panic_threshold=1.5)
    with pytest.raises(ConfigurationError, match="balance_factor"):
        make(["a"], balance_factor=1.0)
    with pytest.raises(InvalidInputError, match="balancer name"):
        make(["a"], name="")


@pytest.mark.parametrize("make", PLACEMENTS)
def test_membership_helpers(make: Factory) -> None:
    balancer = make({"a": 1, "b": 2.5})
    assert len(balancer) == 2
    assert "a" in balancer
    assert "z" not in balancer
    assert balancer.status("b").weight == 2.5
    balancer.set_weight("b", 1.0)
    assert [s.weight for s in balancer.statuses()] == [1.0, 1.0]
    assert balancer.health("a") is NodeHealth.UP
    assert "nodes=2" in repr(balancer)


@pytest.mark.parametrize("make", PLACEMENTS)
def test_update_reconciles_with_one_rebuild(make: Factory) -> None:
    balancer = make(names(6))
    balancer.update({"node-0": 1.0, "node-1": 2.0, "node-9": 1.0})
    assert sorted(balancer.node_names()) == ["node-0", "node-1", "node-9"]
    assert balancer.status("node-1").weight == 2.0
    fresh = make({"node-0": 1.0, "node-1": 2.0, "node-9": 1.0})
    if make is MaglevBalancer:  # the Maglev table depends on the membership alone
        assert mapping(balancer.pick, keys(2000)) == mapping(fresh.pick, keys(2000))


def test_maglev_membership_order_does_not_matter() -> None:
    a = MaglevBalancer(names(20))
    b = MaglevBalancer(list(reversed(names(20))))
    c = MaglevBalancer(names(10))
    for name in names(20)[10:]:
        c.add(name)
    expected = mapping(a.pick, keys(5000))
    assert mapping(b.pick, keys(5000)) == expected
    assert mapping(c.pick, keys(5000)) == expected


def test_maglev_removing_a_node_moves_about_its_share() -> None:
    balancer = MaglevBalancer(names(10))
    before = mapping(balancer.pick, keys(50_000))
    balancer.remove("node-4")
    after = mapping(balancer.pick, keys(50_000))
    assert "node-4" not in after.values()
    changed = moved(before, after)
    on_removed = {k for k, n in before.items() if n == "node-4"}
    assert on_removed <= changed
    assert len(changed) <= 1.1 * len(on_removed)


def test_maglev_shares_follow_weights() -> None:
    balancer = MaglevBalancer({"small": 1.0, "big": 3.0}, table_size=10007)
    shares = balancer.shares()
    assert shares["big"] == pytest.approx(0.75, rel=0.01)
    assert balancer.table_size == 10007


def test_maglev_with_a_custom_hasher() -> None:
    def hasher(data: bytes, seed: int = 0) -> int:
        return xxh64_intdigest(data, seed)

    custom = MaglevBalancer(names(10), hasher=hasher)
    default = MaglevBalancer(names(10))
    assert mapping(custom.pick, keys(2000)) != mapping(default.pick, keys(2000))
    assert custom.pick("k") == custom.pick("k")
    custom.mark_down(custom.pick("k"))
    assert custom.pick("k") == custom.pick_n("k", 1)[0]
