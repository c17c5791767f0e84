"""The asyncio twin on SQLite (aiosqlite): what the shared contract suite does not reach.

Shards (routing by shard key, pages merged across shards), probes started as
tasks on the loop, concurrent tasks on one database, engines that do not fit,
and ``dispose()`` on both twins.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, String, insert, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.util import await_

from commercekit.errors import (
    ConfigurationError,
    DatabaseUnavailableError,
    InvalidInputError,
    RepositoryError,
    SerializationFailureError,
)
from commercekit.metrics import InMemoryMetrics
from commercekit.repository import (
    AsyncDatabase,
    AsyncUnitOfWork,
    Database,
    Node,
    ReadSettings,
    ReplicaStatus,
    ReplicatedTopology,
    ShardedTopology,
    async_engine_from_url,
    sqlite_engine,
)

from . import models
from .fakes import FakeClock, FakePositions, Outage


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "ck_async_orders"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    customer: Mapped[str] = mapped_column(String(20))


def _group(tmp_path: Path, name: str, *, replica: bool = False) -> ReplicatedTopology:
    primary = Node("primary", async_engine_from_url(f"sqlite:///{tmp_path / name}.db"))
    # A "replica" on the same file: it has every commit, so routing is what is checked.
    replicas = (
        [Node("replica1", async_engine_from_url(f"sqlite:///{tmp_path / name}.db"))]
        if replica
        else []
    )
    return ReplicatedTopology(primary, replicas, name=name)


def test_shards_route_by_key_and_pages_merge(tmp_path: Path) -> None:
    async def main() -> None:
        db = AsyncDatabase(
            ShardedTopology([_group(tmp_path, "s1"), _group(tmp_path, "s2")]),
            shard_keys={Order: "customer"},
        )
        await db.create_all(Base.metadata)
        customers = [f"c{i}" for i in range(12)]
        for i, customer in enumerate(customers):
            async with db.unit_of_work(shard_key=customer) as uow:
                await uow.repository(Order).add(Order(id=i, customer=customer))
        assert {db.shard_for(c) for c in customers} == {"s1", "s2"}
        other = next(c for c in customers if db.shard_for(c) != db.shard_for("c0"))
        async with db.unit_of_work(shard_key="c0") as uow:
            with pytest.raises(InvalidInputError):  # an order for another shard's customer
                await uow.repository(Order).add(Order(id=99, customer=other))
        orders = db.repository(Order)
        assert (await orders.get(3, shard_key="c3")).customer == "c3"  # type: ignore[union-attr]
        seen: list[int] = []
        page = await orders.find(order_by=["-id"], limit=5)
        while True:
            seen.extend(o.id for o in page)
            if page.next_after is None:
                break
            page = await orders.find(order_by=["-id"], limit=5, after=page.next_after)
        assert seen == list(range(11, -1, -1))
        assert await orders.count() == 12
        await db.dispose()

    asyncio.run(main())


def test_tasks_share_a_database_and_probes_run_as_tasks(tmp_path: Path) -> None:
    metrics = InMemoryMetrics()

    async def main() -> None:
        db = AsyncDatabase(
            _group(tmp_path, "main", replica=True),
            metrics=metrics,
            reads=ReadSettings(probe_interval_s=0.0),
        )
        await db.create_all(Base.metadata)

        async def place(i: int) -> str | None:
            async def work(uow: AsyncUnitOfWork) -> None:
                await uow.repository(Order).add(Order(id=i, customer=f"c{i}"))

            done = await db.run(work, retry=True)
            found = await db.repository(Order).require(i, token=await done.token())
            return found.customer

        names = await asyncio.gather(*(place(i) for i in range(20)))
        assert names == [f"c{i}" for i in range(20)]  # token reads: the primary, in the window
        counts = await asyncio.gather(*(db.repository(Order).count() for _ in range(5)))
        assert counts == [20] * 5  # reads without a token: the replica
        # Reads found probes due: they ran as tasks on this loop, not on threads.
        probe = db._db._groups["main"]._probe_work
        assert isinstance(getattr(probe, "task", None), asyncio.Task)
        assert not any(t.name.startswith("commercekit-probe") for t in threading.enumerate())
        await db.close()  # waits for a probe still in flight
        await db.dispose()

    asyncio.run(main())
    served = metrics.value(
        "commercekit_repository_statements_total", group="main", node="replica1", role="replica"
    )
    assert served > 0


def test_the_twins_refuse_each_others_engines(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="async engines"):
        AsyncDatabase(ReplicatedTopology(Node("primary", sqlite_engine())))
    with pytest.raises(ConfigurationError, match="use AsyncDatabase"):
        Database(ReplicatedTopology(Node("primary", async_engine_from_url("sqlite://"))))


def test_dispose_closes_every_pooled_connection_of_both_twins(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "sync.db")
    db = Database(ReplicatedTopology(Node("primary", engine)))
    db.create_all(Base.metadata)
    with db.unit_of_work() as uow:
        uow.repository(Order).add(Order(id=1, customer="c1"))
    assert engine.pool.checkedin() == 1
    db.dispose()
    assert engine.pool.checkedin() == 0
    assert db.repository(Order).require(1).customer == "c1"  # usable again after

    async def main() -> int:
        aengine = async_engine_from_url(f"sqlite:///{tmp_path / 'async.db'}")
        adb = AsyncDatabase(ReplicatedTopology(Node("primary", aengine)))
        await adb.create_all(Base.metadata)
        assert aengine.sync_engine.pool.checkedin() == 1  # type: ignore[attr-defined]
        await adb.dispose()
        return aengine.sync_engine.pool.checkedin()  # type: ignore[attr-defined,no-any-return]

    assert asyncio.run(main()) == 0
    topology = ReplicatedTopology.from_urls(f"sqlite:///{tmp_path / 'a.db'}", asyncio=True)
    with pytest.raises(ConfigurationError, match=r"await AsyncDatabase\.dispose"):
        topology.dispose()  # a sync call cannot close what the loop must


def test_dispose_disposes_each_engine_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop's pools are disposed once: not by the loop's release and again after it."""
    from sqlalchemy import Engine

    disposed: list[int] = []
    real = Engine.dispose

    def dispose(self: Engine, close: bool = True) -> None:
        disposed.append(id(self))
        real(self, close)

    monkeypatch.setattr(Engine, "dispose", dispose)

    async def main(*, use: bool) -> list[int]:
        topology = _group(tmp_path, f"once-{use}", replica=True)
        db = AsyncDatabase(topology)
        if use:
            await db.create_all(Base.metadata)
        disposed.clear()
        await db.dispose()
        return sorted(disposed)

    for use in (True, False):  # the loop's pools held, and none taken yet
        engines = asyncio.run(main(use=use))
        assert len(engines) == len(set(engines)) == 2, engines


def test_a_missing_async_driver_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from commercekit.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "asyncmy", None)  # import asyncmy now fails
    with pytest.raises(MissingExtraError, match=r"\[mysql-asyncio\]"):
        async_engine_from_url("mysql://root@127.0.0.1/test")


def test_importing_the_repository_leaves_sqlalchemy_asyncio_and_the_dialects_unloaded() -> None:
    import subprocess
    import sys

    code = (
        "import sys, commercekit.repository as r\n"
        "loaded = [m for m in sys.modules if m.startswith("
        "('sqlalchemy.ext.asyncio', 'sqlalchemy.dialects.'))]\n"
        "assert not loaded, loaded\n"
        "assert r.AsyncDatabase.__name__ == 'AsyncDatabase'\n"
        "assert 'sqlalchemy.ext.asyncio' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_probe_task_cancelled_before_it_starts_lets_the_next_probe_run(tmp_path: Path) -> None:
    async def main() -> None:
        db = AsyncDatabase(
            _group(tmp_path, "main", replica=True), reads=ReadSettings(probe_interval_s=0.0)
        )
        group = db._db._groups["main"]
        group.maybe_probe()  # a task, not started before this coroutine yields
        first = group._probe_work
        first.task.cancel()  # type: ignore[union-attr]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert first.task.cancelled()  # type: ignore[union-attr]
        group.maybe_probe()
        assert group._probe_work is not first  # the group's probe lock was given back
        await db.dispose()

    asyncio.run(main())


def _replicated(tmp_path: Path, **reads: Any) -> tuple[AsyncDatabase, dict[str, Outage]]:
    """An aiosqlite primary and replicas r1, r2 holding customer 1, with outages to switch on."""
    files = {n: tmp_path / f"{n}.db" for n in ("primary", "r1", "r2")}
    for path in files.values():
        engine = sqlite_engine(path)
        models.Base.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(insert(models.Customer), [vars_of(models.customer(1))])
        engine.dispose()
    nodes = {n: Node(n, async_engine_from_url(f"sqlite:///{p}")) for n, p in files.items()}
    positions = FakePositions({str(p): n for n, p in files.items() if n != "primary"})
    db = AsyncDatabase(
        ReplicatedTopology(nodes["primary"], [nodes["r1"], nodes["r2"]]),
        reads=ReadSettings(probe_interval_s=5.0, background_probes=False, **reads),
        position_source=positions,
        clock=FakeClock(),
    )
    outages = {n: Outage(nodes[n].engine) for n in ("r1", "r2")}
    return db, outages


def vars_of(obj: object) -> dict[str, object]:
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


@pytest.mark.parametrize("ejects", [1, 3], ids=["ejected", "not-yet-ejected"])
def test_an_async_read_only_unit_of_work_fails_over_with_its_repositories(
    tmp_path: Path, ejects: int
) -> None:
    async def main() -> None:
        db, outages = _replicated(tmp_path, eject_after_failures=ejects)
        await db.probe()
        async with db.unit_of_work(read_only=True, key="session-1") as uow:
            await uow.repository(models.Customer).require(1)
        lost = uow.node
        other = "r2" if lost == "r1" else "r1"
        outages[lost].on = True
        async with db.unit_of_work(read_only=True, key="session-1") as uow:
            repo = uow.repository(models.Customer)
            assert (await repo.require(1)).id == 1  # failed over: the key's replica is lost
            assert uow.node == other
            # The repository taken before, and the one cached, run on the new node's
            # connection, and say so.
            for held in (repo, uow.repository(models.Customer)):
                with pytest.raises(RepositoryError, match=f"database error on {other}:"):
                    await held.count(text("no_such_column = 1"))
                conn = await held.session.connection()
                assert conn.sync_connection is uow.session.sync_session.connection()
                assert held.session.bind is conn
        assert outages[lost].failed == 1
        await db.dispose()

    asyncio.run(main())


def test_read_only_async_work_run_again_avoids_the_replica_it_lost(tmp_path: Path) -> None:
    async def main() -> None:
        db, outages = _replicated(tmp_path, eject_after_failures=3)
        await db.probe()
        calls: list[str] = []

        async def work(uow: AsyncUnitOfWork) -> int:
            calls.append(uow.node)
            if len(calls) == 1:
                await uow.repository(models.Customer).require(1)  # served: no fail-over now
                outages[uow.node].on = True
                await uow.repository(models.Customer).count()
            return (await uow.repository(models.Customer).require(1)).id

        done = await db.run(work, read_only=True, key="session-1")
        assert done.value == 1
        assert len(calls) == 2
        assert calls[1] != calls[0]
        await db.dispose()

    asyncio.run(main())


@pytest.mark.parametrize("inner", ["replica", "primary"])
def test_a_loss_in_nested_async_work_is_not_the_outer_unit_of_work_s_loss(
    tmp_path: Path, inner: str
) -> None:
    async def main() -> None:
        db, outages = _replicated(tmp_path, eject_after_failures=1)
        await db.probe()
        keys: dict[str, str] = {}
        for i in range(200):
            async with db.unit_of_work(read_only=True, key=f"k{i}") as uow:
                keys.setdefault(uow.node, f"k{i}")
        replicas = db._db._groups["main"].replica_set
        outer = db.unit_of_work(read_only=True, key=keys["r1"])

        async def nested_work() -> None:
            async with outer:
                await outer.repository(models.Customer).require(1)
                key = keys["r2"] if inner == "replica" else None
                async with db.unit_of_work(read_only=inner == "replica", key=key) as nested:
                    await nested.repository(models.Customer).require(1)  # no fail-over now
                    if inner == "replica":
                        outages["r2"].on = True
                    else:
                        Outage(db._db._groups["main"].primary.engine).on = True
                    await nested.repository(models.Customer).count()

        with pytest.raises(DatabaseUnavailableError):
            await nested_work()
        assert outer.node == "r1"
        assert not replicas.ejected("r1")
        assert replicas.ejected("r2") is (inner == "replica")
        await db.dispose()

    asyncio.run(main())


def test_run_waits_with_the_injected_sleep(tmp_path: Path) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def main() -> None:
        db = AsyncDatabase(_group(tmp_path, "main"), sleep=sleep)
        await db.create_all(Base.metadata)
        calls = 0

        async def flaky(uow: AsyncUnitOfWork) -> int:
            nonlocal calls
            calls += 1
            if calls < 3:
                raise SerializationFailureError("deadlock (simulated)")
            return calls

        assert (await db.run(flaky, retry=True)).value == 3
        await db.dispose()

    asyncio.run(main())
    assert len(slept) == 2  # one wait before each attempt again, none real


@pytest.mark.parametrize(
    "sleep", [lambda _s: None, time.sleep, lambda _s: 1], ids=["returns-none", "time-sleep", "int"]
)
def test_a_sleep_that_cannot_be_awaited_is_a_configuration_error(
    tmp_path: Path, sleep: Callable[[float], object]
) -> None:
    """Refused when made where that can be told (a builtin), else at the first wait: not retried."""
    attempts = 0

    async def main() -> None:
        db = AsyncDatabase(_group(tmp_path, "main"), sleep=sleep)  # type: ignore[arg-type]
        await db.create_all(Base.metadata)

        async def flaky(uow: AsyncUnitOfWork) -> int:
            nonlocal attempts
            attempts += 1
            raise SerializationFailureError("deadlock (simulated)")

        try:
            with pytest.raises(ConfigurationError, match="async sleep"):
                await db.run(flaky, retry=True)
        finally:
            await db.dispose()

    if sleep is time.sleep:
        with pytest.raises(ConfigurationError, match="async sleep"):
            AsyncDatabase(_group(tmp_path, "main"), sleep=sleep)  # type: ignore[arg-type]
        return
    asyncio.run(main())
    assert attempts == 1  # nothing was tried again


def test_an_async_sleep_in_the_sync_twin_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="sync sleep"):
        Database(ReplicatedTopology(Node("p", sqlite_engine())), sleep=asyncio.sleep)  # type: ignore[arg-type]


class _HangingPositions(FakePositions):
    """A probe that does not answer until it is cancelled."""

    started = ended = False

    def status(self, connection: Connection) -> ReplicaStatus:
        self.started = True
        try:
            await_(asyncio.sleep(3600))
        finally:
            self.ended = True
        raise AssertionError("not reached")


def test_dispose_awaits_the_probe_it_cancels(tmp_path: Path) -> None:
    positions = _HangingPositions({})

    async def main() -> None:
        db = AsyncDatabase(
            _group(tmp_path, "main", replica=True),
            reads=ReadSettings(probe_interval_s=0.0),
            position_source=positions,
        )
        group = db._db._groups["main"]
        group.maybe_probe()  # a task on this loop
        while not positions.started:
            await asyncio.sleep(0)
        await db.dispose(probe_wait_s=0.01)
        work = group._probe_work
        assert positions.ended  # cancelled and awaited: nothing of it runs after dispose
        assert work.task.done()  # type: ignore[union-attr]

    asyncio.run(main())
