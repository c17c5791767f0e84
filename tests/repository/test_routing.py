"""Property tests of the pure routing core: no I/O, no clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commercekit.errors import ConfigurationError
from commercekit.repository import (
    CommitTime,
    FallbackReason,
    Lsn,
    ReplicaView,
    Role,
    RoutingPolicy,
    in_rotation,
    route_read,
    route_write,
)
from commercekit.repository._policy._position import covers

from .strategies import lsns, positions, replica_views

policies = st.builds(
    RoutingPolicy,
    max_lag_s=st.none() | st.floats(0, 50),
    tolerable_lag_s=st.none(),
    min_replicas=st.integers(0, 3),
    read_your_writes_window_s=st.floats(0, 10),
    stall_backoff_s=st.floats(0, 10),
)


@given(st.text(min_size=1, max_size=10))
def test_a_write_always_goes_to_the_primary(primary: str) -> None:
    route = route_write(primary)
    assert [(t.name, t.role) for t in route.targets] == [(primary, Role.PRIMARY)]


@given(replica_views(), policies, st.none() | positions(), st.floats(0, 100), st.floats(0, 4e9))
def test_a_read_route_ends_on_the_primary_and_uses_only_available_replicas(
    replicas: list[ReplicaView],
    policy: RoutingPolicy,
    wanted: Lsn | None,
    now: float,
    wall: float,
) -> None:
    route = route_read("p", replicas, policy, wanted=wanted, now_s=now, wall_now_s=wall)
    assert route.targets[-1].role is Role.PRIMARY
    assert route.targets[-1].name == "p"
    by_name = {r.name: r for r in replicas}
    for target in route.targets[:-1]:
        assert target.role is Role.REPLICA
        assert by_name[target.name].available


@given(replica_views(lsns()), policies, lsns(), st.floats(0, 100))
def test_a_token_read_never_goes_unchecked_to_a_replica_behind_it(
    replicas: list[ReplicaView], policy: RoutingPolicy, wanted: Lsn, now: float
) -> None:
    route = route_read("p", replicas, policy, wanted=wanted, now_s=now)
    by_name = {r.name: r for r in replicas}
    for target in route.targets:
        if target.role is Role.REPLICA and not target.must_confirm:
            replayed = by_name[target.name].replayed
            assert replayed is not None
            assert covers(replayed, wanted)


@given(replica_views(), st.floats(0, 100), st.floats(0, 100))
def test_a_fresh_commit_time_token_reads_from_the_primary(
    replicas: list[ReplicaView], age: float, window: float
) -> None:
    policy = RoutingPolicy(read_your_writes_window_s=window)
    route = route_read("p", replicas, policy, wanted=CommitTime(1000.0), wall_now_s=1000.0 + age)
    if age < window:
        assert [t.role for t in route.targets] == [Role.PRIMARY]


def test_no_token_prefers_replicas_in_the_given_order() -> None:
    views = [ReplicaView(name="b"), ReplicaView(name="a")]
    route = route_read("p", views, RoutingPolicy())
    assert [t.name for t in route.targets] == ["b", "a", "p"]
    assert route.reason is None


def test_no_replica_reads_from_the_primary() -> None:
    route = route_read("p", [ReplicaView(name="a", available=False)], RoutingPolicy())
    assert [t.name for t in route.targets] == ["p"]
    assert route.reason is FallbackReason.NO_REPLICA


def test_unreplayed_token_waits_on_one_replica_then_primary() -> None:
    views = [
        ReplicaView(name="a", replayed=Lsn(5)),
        ReplicaView(name="b", replayed=Lsn(50)),
    ]
    route = route_read("p", views, RoutingPolicy(), wanted=Lsn(40))
    assert [(t.name, t.must_confirm) for t in route.targets] == [("b", False), ("p", False)]
    route = route_read("p", views, RoutingPolicy(), wanted=Lsn(60))
    assert [(t.name, t.must_confirm) for t in route.targets] == [("a", True), ("p", False)]


def test_a_stalled_replica_is_not_waited_on_during_its_backoff() -> None:
    views = [ReplicaView(name="a", replayed=Lsn(5), wait_failed_at_s=10.0)]
    policy = RoutingPolicy(stall_backoff_s=2.0)
    route = route_read("p", views, policy, wanted=Lsn(6), now_s=11.0)
    assert route.reason is FallbackReason.TOKEN_UNREPLAYED
    route = route_read("p", views, policy, wanted=Lsn(6), now_s=12.5)
    assert route.targets[0].must_confirm


def test_lagging_replicas_leave_but_min_replicas_stay_while_tolerable() -> None:
    views = [
        ReplicaView(name="a", lag_s=9.0),
        ReplicaView(name="b", lag_s=3.0),
        ReplicaView(name="c", lag_s=100.0),
    ]
    policy = RoutingPolicy(max_lag_s=1.0, tolerable_lag_s=10.0, min_replicas=1)
    assert [r.name for r in in_rotation(views, policy)] == ["b"]
    policy = RoutingPolicy(max_lag_s=1.0, tolerable_lag_s=10.0, min_replicas=2)
    assert [r.name for r in in_rotation(views, policy)] == ["a", "b"]
    policy = RoutingPolicy(max_lag_s=1.0, tolerable_lag_s=5.0, min_replicas=3)
    assert [r.name for r in in_rotation(views, policy)] == ["b"]
    policy = RoutingPolicy(max_lag_s=1.0, min_replicas=0)
    assert in_rotation(views, policy) == []


@given(replica_views(), policies)
def test_rotation_keeps_min_replicas_when_enough_are_available(
    replicas: list[ReplicaView], policy: RoutingPolicy
) -> None:
    rotation = in_rotation(replicas, policy)
    available = [r for r in replicas if r.available]
    assert len(rotation) >= min(policy.min_replicas, len(available))
    for r in rotation:
        assert r.available


def test_policy_refuses_inconsistent_limits() -> None:
    with pytest.raises(ConfigurationError):
        RoutingPolicy(max_lag_s=5, tolerable_lag_s=1)
    with pytest.raises(ConfigurationError):
        RoutingPolicy(max_lag_s=-1)
