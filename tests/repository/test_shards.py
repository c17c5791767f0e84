"""Shards: several replication groups, a shard key picks one by consistent hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from commercekit.errors import DatabaseUnavailableError, InvalidInputError
from commercekit.repository import (
    Database,
    Node,
    ReadSettings,
    ReplicatedTopology,
    ShardedTopology,
    keys_to_move,
    sqlite_engine,
)

from .fakes import FakeClock, FakePositions, Outage, replicate
from .models import Base, Customer, Order, customer


@pytest.fixture
def sharded() -> Database:
    groups = [
        ReplicatedTopology(Node("primary", sqlite_engine()), name=f"s{i}") for i in range(1, 4)
    ]
    db = Database(ShardedTopology(groups), shard_keys={Customer: "id", Order: "customer_id"})
    db.create_all(Base.metadata)
    for i in range(1, 61):
        with db.unit_of_work(shard_key=i) as uow:
            uow.repository(Customer).add(customer(i))
            uow.repository(Order).add(Order(id=i, customer_id=i, total_minor=i * 100))
    return db


def test_rows_spread_over_shards_and_get_goes_straight_to_its_shard(sharded: Database) -> None:
    counts = {}
    for shard in sharded.shards:
        with sharded.unit_of_work(shard_key=_key_in(sharded, shard)) as uow:
            counts[shard] = uow.repository(Customer).count()
    assert sum(counts.values()) == 60
    assert all(c >= 5 for c in counts.values())
    assert sharded.repository(Customer).require(17).id == 17
    assert [c.id for c in sharded.repository(Customer).get_many([5, 60, 1])] == [5, 60, 1]


def test_queries_fan_out_and_merge_in_order(sharded: Database) -> None:
    repo = sharded.repository(Customer)
    assert repo.count() == 60
    seen: list[int] = []
    after = None
    while True:
        page = repo.find(order_by=["-id"], limit=13, after=after)
        seen.extend(c.id for c in page)
        after = page.next_after
        if after is None:
            break
    assert seen == list(range(60, 0, -1))
    assert [o.id for o in sharded.repository(Order).list(Order.total_minor > 5500)] == [
        56, 57, 58, 59, 60,
    ]  # fmt: skip
    assert sharded.repository(Order).count(customer_id=7, shard_key=7) == 1


def test_a_row_must_go_to_its_own_shard(sharded: Database) -> None:
    with pytest.raises(InvalidInputError):
        sharded.unit_of_work()
    owner = sharded.shard_for(1000)
    other = next(s for s in sharded.shards if s != owner)
    with (
        pytest.raises(InvalidInputError),
        sharded.unit_of_work(shard_key=_key_in(sharded, other)) as uow,
    ):
        uow.repository(Customer).add(customer(1000))


def test_tokens_keep_one_position_per_shard(sharded: Database) -> None:
    a = sharded.run(lambda u: u.repository(Customer).update(1, name="a"), shard_key=1).token
    b = sharded.run(
        lambda u: u.repository(Customer).update(2, name="b"), shard_key=2, token=a
    ).token
    assert a is not None
    assert b is not None
    if sharded.shard_for(1) != sharded.shard_for(2):
        assert b.count("=ts:") == 2


def test_adding_a_shard_moves_about_a_quarter_of_the_keys_all_to_the_new_one() -> None:
    moves = keys_to_move(range(10_000), ["s1", "s2", "s3"], ["s1", "s2", "s3", "s4"])
    assert 1800 < len(moves) < 3200
    assert {new for _, new in moves.values()} == {"s4"}


def _key_in(db: Database, shard: str) -> int:
    return next(k for k in range(10_000) if db.shard_for(k) == shard)


def test_shards_are_placed_by_a_ketama_ring_or_any_keyed_balancer() -> None:
    from commercekit.balancer import KetamaBalancer, MaglevBalancer

    ring = KetamaBalancer(["s1", "s2", "s3"], name="check")
    groups = [ReplicatedTopology(Node("primary", sqlite_engine()), name=f"s{i}") for i in (1, 2, 3)]
    db = Database(ShardedTopology(groups))
    assert all(db.shard_for(k) == ring.pick(str(k)) for k in range(500))
    assert db.shard_for((7, "eu")) == ring.pick("7\x1feu")
    maglev = Database(
        ShardedTopology(groups), shard_placement=lambda names: MaglevBalancer(names, name="m")
    )
    moves = keys_to_move(
        range(10_000),
        ["s1", "s2", "s3"],
        ["s1", "s2", "s3", "s4"],
        placement=lambda names: MaglevBalancer(names, name="m"),
    )
    assert 1800 < len(moves) < 3200
    assert all(maglev.shard_for(k) in {"s1", "s2", "s3"} for k in range(100))


def _replicated_shards(tmp_path: Path) -> tuple[Database, dict[str, ReplicatedTopology]]:
    """Shards s1 and s2, each a primary with replicas named r1 and r2, holding customers 1-40."""
    groups: dict[str, ReplicatedTopology] = {}
    paths: dict[str, str] = {}
    for shard in ("s1", "s2"):
        (tmp_path / shard).mkdir()
        primary = sqlite_engine(tmp_path / shard / "primary.db")
        replicas = [Node(r, sqlite_engine(tmp_path / shard / f"{r}.db")) for r in ("r1", "r2")]
        for node in replicas:
            paths[str(node.engine.url.database)] = node.name
        groups[shard] = ReplicatedTopology(Node("primary", primary), replicas, name=shard)
    db = Database(
        ShardedTopology(list(groups.values())),
        shard_keys={Customer: "id"},
        reads=ReadSettings(
            token_wait_s=0.0, eject_after_failures=1, background_probes=False, probe_interval_s=5.0
        ),
        position_source=FakePositions(paths),
        clock=FakeClock(),
        sleep=lambda _s: None,
    )
    for topology in groups.values():
        for node in (topology.primary, *topology.replicas):
            Base.metadata.create_all(node.engine)
    for i in range(1, 41):
        with db.unit_of_work(shard_key=i) as uow:
            uow.repository(Customer).add(customer(i))
    for topology in groups.values():
        for node in topology.replicas:
            replicate(topology.primary.engine, node.engine)
    db.probe()
    return db, groups


@pytest.mark.parametrize("inner", ["replica", "primary"])
def test_a_loss_on_another_shard_is_not_the_outer_unit_of_work_s_loss(
    tmp_path: Path, inner: str
) -> None:
    """Replicas of two shards share names: only the shard whose node was lost ejects it."""
    db, groups = _replicated_shards(tmp_path)
    one, two = (next(k for k in range(1, 41) if db.shard_for(k) == s) for s in ("s1", "s2"))
    try:
        outer = db.unit_of_work(read_only=True, shard_key=one)
        nested = db.unit_of_work(read_only=inner == "replica", shard_key=two)

        def nested_work() -> None:
            with outer:
                outer.repository(Customer).require(one)
                with nested:
                    nested.repository(Customer).require(two)  # served: no fail-over from here
                    nodes = (groups["s2"].primary, *groups["s2"].replicas)
                    Outage(next(n.engine for n in nodes if n.name == nested.node)).on = True
                    nested.repository(Customer).count()

        with pytest.raises(DatabaseUnavailableError):
            nested_work()
        lost = nested.node
        assert outer.role.value == "replica"
        assert not db._groups["s1"].replica_set.ejected(outer.node)
        assert outer._avoid == frozenset()
        if inner == "replica":
            assert db._groups["s2"].replica_set.ejected(lost)
            assert nested._avoid == {lost}
        assert db.repository(Customer).count() == 40
    finally:
        db.close()
        for topology in groups.values():
            topology.dispose()
