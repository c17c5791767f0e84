"""Benchmark of commercekit.repository: overhead against plain SQLAlchemy, replica read throughput.

One run measures, on SQLite (a WAL file) and on a PostgreSQL cluster started
in a temporary folder (a primary and two streaming standbys, when the
PostgreSQL binaries are installed), the microseconds per operation of

* ``get``: a primary-key get (ours: ``db.repository(Item).get(k)``; plain:
  ``Session(engine).get(Item, k)``),
* ``insert``: one row in its own transaction (ours: a unit of work; plain:
  ``with Session(engine).begin()``),
* ``query``: a filtered, ordered page of 20 (ours: ``find``; plain: ``select``),

both on the same engine, alternating in batches of 25 (best batch kept), and prints
ours, plain SQLAlchemy and the ratio (target: <= 1.15). The same three
operations through the asyncio twin beside plain ``AsyncSession`` on the same
``AsyncEngine`` (aiosqlite; psycopg async), ours ``await db.repository(Item).get(k)``,
``async with db.unit_of_work()`` and ``await ....find(...)`` (target: <= 1.15,
``meets_async_overhead_1_15x``). Then the read
throughput (gets per second, 4 threads) of ours with 0, 1 and 2 replicas, and
the cost of the statement deadline on PostgreSQL: ``select 1`` through an
engine from ``engine_from_url`` with its default ``statement_timeout_s``
(every wait on the server watched) against one with ``statement_timeout_s=None``
(target: <= 1.05)::

    .venv/bin/python benchmarks/repository.py            # the table
    .venv/bin/python benchmarks/repository.py --json     # the same figures as one JSON object
    .venv/bin/python benchmarks/repository.py --quick    # fewer operations (rougher figures)

``--part sync`` or ``--part async`` measures only those overhead rows (the
deadline and the read throughput go with the sync part). A ``meets_*`` key is
written only for a target the run measured: none for the part left out, and no
``meets_deadline_overhead_1_05x`` without PostgreSQL; ``measured_engines`` lists
the engines behind the overhead verdicts.

The script reports; it does not fail when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration._histories import HBase, Item

from commercekit.repository import (
    AsyncDatabase,
    Database,
    Node,
    ReplicatedTopology,
    async_engine_from_url,
    engine_from_url,
    sqlite_engine,
)

TARGET = 1.15
BATCH = 25
"""Operations per timed batch; ours and plain alternate batch by batch, best batch kept."""
DEADLINE_TARGET = 1.05


def _time(fn: Callable[[int], None], n: int, start: int) -> float:
    t0 = time.perf_counter()
    for i in range(start, start + n):
        fn(i)
    return (time.perf_counter() - t0) / n * 1e6


def measure(engine: Engine, *, n: int, rounds: int) -> dict[str, dict[str, float]]:
    HBase.metadata.drop_all(engine)
    HBase.metadata.create_all(engine)
    db = Database(ReplicatedTopology(Node("primary", engine)))
    repo = db.repository(Item)
    key = [10_000_000]

    def ours_insert(i: int) -> None:
        key[0] += 1
        with db.unit_of_work() as uow:
            uow.repository(Item).add(Item(id=key[0], value=i))

    def plain_insert(i: int) -> None:
        key[0] += 1
        with Session(engine) as s, s.begin():
            s.add(Item(id=key[0], value=i))

    def ours_get(i: int) -> None:
        repo.get(10_000_001 + i % 200)

    def plain_get(i: int) -> None:
        with Session(engine) as s:
            s.get(Item, 10_000_001 + i % 200)

    def ours_query(i: int) -> None:
        repo.find(Item.value >= i % 100, order_by=["value"], limit=20)

    def plain_query(i: int) -> None:
        with Session(engine) as s:
            list(
                s.scalars(
                    select(Item)
                    .where(Item.value >= i % 100)
                    .order_by(Item.value, Item.id)
                    .limit(21)
                )
            )

    cases = {
        "insert": (ours_insert, plain_insert),
        "get": (ours_get, plain_get),
        "query": (ours_query, plain_query),
    }
    best: dict[str, dict[str, float]] = {
        op: {"ours_us": float("inf"), "plain_us": float("inf")} for op in cases
    }
    for r in range(rounds * n // BATCH):  # short alternating batches: see measure_async
        for op, (ours, plain) in cases.items():
            pair = [("ours_us", ours), ("plain_us", plain)]
            for name, fn in pair if r % 2 == 0 else reversed(pair):
                best[op][name] = min(best[op][name], _time(fn, BATCH, r * BATCH))
    for figures in best.values():
        figures["ratio"] = figures["ours_us"] / figures["plain_us"]
    db.close()
    return best


async def _atime(
    fn: Callable[[int], Awaitable[None]], n: int, start: int, clock: Callable[[], float]
) -> float:
    t0 = clock()
    for i in range(start, start + n):
        await fn(i)
    return (clock() - t0) / n * 1e6


async def measure_async(engine: AsyncEngine, *, n: int, rounds: int) -> dict[str, dict[str, float]]:
    """:func:`measure` for the asyncio twin against plain ``AsyncSession`` on one engine."""
    async with engine.begin() as conn:
        await conn.run_sync(HBase.metadata.drop_all)
        await conn.run_sync(HBase.metadata.create_all)
    db = AsyncDatabase(ReplicatedTopology(Node("primary", engine)))
    repo = db.repository(Item)
    key = [20_000_000]

    async def ours_insert(i: int) -> None:
        key[0] += 1
        async with db.unit_of_work() as uow:
            await uow.repository(Item).add(Item(id=key[0], value=i))

    async def plain_insert(i: int) -> None:
        key[0] += 1
        async with AsyncSession(engine) as s, s.begin():
            s.add(Item(id=key[0], value=i))

    async def ours_get(i: int) -> None:
        await repo.get(20_000_001 + i % 200)

    async def plain_get(i: int) -> None:
        async with AsyncSession(engine) as s:
            await s.get(Item, 20_000_001 + i % 200)

    async def ours_query(i: int) -> None:
        await repo.find(Item.value >= i % 100, order_by=["value"], limit=20)

    async def plain_query(i: int) -> None:
        async with AsyncSession(engine) as s:
            list(
                await s.scalars(
                    select(Item)
                    .where(Item.value >= i % 100)
                    .order_by(Item.value, Item.id)
                    .limit(21)
                )
            )

    cases = {
        "insert": (ours_insert, plain_insert),
        "get": (ours_get, plain_get),
        "query": (ours_query, plain_query),
    }
    names = ("ours_us", "plain_us", "ours_cpu_us", "plain_cpu_us")
    best: dict[str, dict[str, float]] = {op: dict.fromkeys(names, float("inf")) for op in cases}
    # Short batches, ours and plain alternating, the best batch of each kept: on a
    # shared machine a batch of 25 often runs without another process in the way,
    # where a whole round of hundreds rarely does.
    for r in range(rounds * n // BATCH):
        for op, (ours, plain) in cases.items():
            pair = [("ours_us", ours), ("plain_us", plain)]
            for name, fn in pair if r % 2 == 0 else reversed(pair):
                # Wall time (the figure with the target), and this process's CPU time,
                # which other processes on a loaded machine cannot inflate.
                clock = time.process_time if r % 4 >= 2 else time.perf_counter
                slot = name.replace("_us", "_cpu_us") if clock is time.process_time else name
                best[op][slot] = min(best[op][slot], await _atime(fn, BATCH, r * BATCH, clock))
    for figures in best.values():
        figures["ratio"] = figures["ours_us"] / figures["plain_us"]
        figures["cpu_ratio"] = figures["ours_cpu_us"] / figures["plain_cpu_us"]
    await db.dispose()
    return best


def replica_throughput(urls: list[str], *, seconds: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for replicas in (0, 1, 2):
        topology = ReplicatedTopology.from_urls(urls[0], urls[1 : 1 + replicas], pool_size=8)
        db = Database(topology)
        repo = db.repository(Item)
        count = [0]
        lock = threading.Lock()
        stop = time.monotonic() + seconds

        def work(
            repo: Any = repo,
            stop: float = stop,
            lock: threading.Lock = lock,
            count: list[int] = count,
        ) -> None:
            n = 0
            while time.monotonic() < stop:
                repo.get(10_000_001 + n % 200)
                n += 1
            with lock:
                count[0] += n

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out[f"{replicas}_replicas_reads_per_s"] = count[0] / seconds
        db.close()
        topology.dispose()
    return out


def deadline_overhead(url: str, *, n: int, rounds: int) -> dict[str, float]:
    """Microseconds per ``select 1`` with and without the statement deadline."""
    from sqlalchemy import text

    engines = {
        "with": engine_from_url(url),
        "without": engine_from_url(url, statement_timeout_s=None),
    }
    best = {name: float("inf") for name in engines}
    statement = text("select 1")
    try:
        for _ in range(rounds):
            for name, engine in engines.items():
                with engine.connect() as conn:
                    conn.execute(statement)
                    best[name] = min(
                        best[name], _time(lambda _i, c=conn: c.execute(statement), n * 5, 0)
                    )
    finally:
        for engine in engines.values():
            engine.dispose()
    return {
        "with_deadline_us": best["with"],
        "without_us": best["without"],
        "ratio": best["with"] / best["without"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--part",
        choices=["all", "sync", "async"],
        default="all",
        help="measure only the sync or only the asyncio overhead rows",
    )
    args = parser.parse_args()
    sync_part, async_part = args.part in {"all", "sync"}, args.part in {"all", "async"}
    n, rounds = (100, 3) if args.quick else (400, 5)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if sync_part:
            engine = sqlite_engine(Path(tmp) / "bench.db")
            results["sqlite"] = measure(engine, n=n, rounds=rounds)
            engine.dispose()
        if async_part:
            aengine = async_engine_from_url(f"sqlite:///{Path(tmp) / 'bench-async.db'}")
            results["sqlite_async"] = asyncio.run(measure_async(aengine, n=n, rounds=rounds))
    from tests.integration._servers import PgCluster, pg_missing

    if pg_missing() is None:
        with PgCluster(standbys=2) as cluster:
            if async_part:
                aengine = async_engine_from_url(cluster.url("primary"))
                results["postgresql_async"] = asyncio.run(
                    measure_async(aengine, n=n, rounds=rounds)
                )
            if sync_part:
                engine = engine_from_url(cluster.url("primary"))
                results["postgresql"] = measure(engine, n=n, rounds=rounds)
                engine.dispose()
                results["postgresql_deadline"] = deadline_overhead(
                    cluster.url("primary"), n=n, rounds=rounds
                )
                cluster.wait_caught_up()
                urls = [cluster.url(x) for x in ("primary", *cluster.standby_names)]
                results["postgresql_read_throughput"] = replica_throughput(
                    urls, seconds=1.0 if args.quick else 3.0
                )

    # A target is reported (meets_*) only when this run measured it: --part async writes
    # no verdict on the sync rows, and no PostgreSQL means no verdict on the deadline.
    def ratios_of(key: str, *engine_names: str) -> list[float]:
        return [
            figures[key]
            for engine_name in engine_names
            for figures in results.get(engine_name, {}).values()
        ]

    results["target_ratio"] = TARGET
    engines = ("sqlite", "postgresql", "sqlite_async", "postgresql_async")
    results["measured_engines"] = [name for name in engines if name in results]
    if sync_part:
        results["meets_overhead_1_15x"] = max(ratios_of("ratio", "sqlite", "postgresql")) <= TARGET
    if async_part:
        async_engines = ("sqlite_async", "postgresql_async")
        results["meets_async_overhead_1_15x"] = max(ratios_of("ratio", *async_engines)) <= TARGET
        results["meets_async_cpu_overhead_1_15x"] = (
            max(ratios_of("cpu_ratio", *async_engines)) <= TARGET
        )
    deadline = results.get("postgresql_deadline")
    if deadline is not None:
        results["meets_deadline_overhead_1_05x"] = deadline["ratio"] <= DEADLINE_TARGET
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
        return
    print(f"{'engine':<17} {'operation':<8} {'ours us':>9} {'plain us':>9} {'ratio':>7}")
    for engine_name in ("sqlite", "postgresql", "sqlite_async", "postgresql_async"):
        for op, f in results.get(engine_name, {}).items():
            print(
                f"{engine_name:<17} {op:<8} {f['ours_us']:>9.1f} {f['plain_us']:>9.1f} "
                f"{f['ratio']:>6.2f}x"
            )
    met_sync = results.get("meets_overhead_1_15x", "not measured")
    met_async = results.get("meets_async_overhead_1_15x", "not measured")
    print(f"target: ratio <= {TARGET}x  met: sync {met_sync}, async {met_async}")
    for engine_name in ("sqlite_async", "postgresql_async"):
        for op, f in results.get(engine_name, {}).items():
            print(
                f"{engine_name:<17} {op:<8} CPU {f['ours_cpu_us']:>7.1f} us against "
                f"{f['plain_cpu_us']:>7.1f} us: {f['cpu_ratio']:.2f}x"
            )
    if deadline is not None:
        print(
            "\nPostgreSQL select 1 with the statement deadline: "
            f"{deadline['with_deadline_us']:.1f} us, without: {deadline['without_us']:.1f} us, "
            f"ratio {deadline['ratio']:.3f}x "
            f"(target <= {DEADLINE_TARGET}x, met: {results['meets_deadline_overhead_1_05x']})"
        )
    if "postgresql_read_throughput" in results:
        print("\nPostgreSQL read throughput (4 threads, ours)")
        for name, value in results["postgresql_read_throughput"].items():
            print(f"  {name:<28} {value:>10.0f}")
    elif "postgresql_async" not in results:
        print("\n(PostgreSQL not installed: no PostgreSQL figures)")


if __name__ == "__main__":
    main()
