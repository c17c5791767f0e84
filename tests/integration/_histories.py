"""Randomized write-then-read histories against a replicated Database (shared by PG and MariaDB)."""

from __future__ import annotations

import asyncio
import random
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import attrs
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from commercekit.metrics import InMemoryMetrics, MetricsSnapshot
from commercekit.repository import (
    AsyncDatabase,
    Database,
    ReadSettings,
    ReplicatedTopology,
    RetryPolicy,
    RoutingPolicy,
    Versioned,
)

M = "commercekit_repository_"


class HBase(DeclarativeBase):
    pass


class Item(Versioned, HBase):
    __tablename__ = "ck_items"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    value: Mapped[int]
    label: Mapped[str] = mapped_column(String(40), default="")


@attrs.define
class Tally:
    histories: int = 0
    stale: int = 0
    failures: int = 0
    errors: list[str] = attrs.field(factory=list)


def run_histories(
    db: Database,
    *,
    count: int,
    with_tokens: bool,
    threads: int = 4,
    keys_per_thread: int = 200,
    seed: int = 7,
    on_progress: Callable[[int], None] | None = None,
    base_key: int = 0,
    before_read: Callable[[], None] | None = None,
) -> Tally:
    """Each history writes a new value to a random key, then reads the key back.

    Each thread owns its keys, so the value just written is the only right answer.
    *before_read* runs between the write and the read (e.g. wait until every
    replica has applied the write).
    """
    tally = Tally()
    lock = threading.Lock()
    done = [0]

    def worker(t: int) -> None:
        rng = random.Random(seed * 1000 + t)
        keys = range(base_key + t * keys_per_thread, base_key + (t + 1) * keys_per_thread)
        repo = db.repository(Item)
        for n in range(count // threads):
            key = rng.choice(keys)
            value = rng.randrange(1, 2**31)
            try:

                def write(uow: object, key: int = key, value: int = value) -> None:
                    items = uow.repository(Item)  # type: ignore[attr-defined]
                    found = items.get(key)
                    if found is None:
                        items.add(Item(id=key, value=value))
                    else:
                        items.update(found, value=value)

                token = db.run(write, retry=True).token
                if before_read is not None:
                    before_read()
                got = repo.get(key, token=token if with_tokens else None)
                stale = got is None or got.value != value
            except Exception:  # counted and reported by the test
                with lock:
                    tally.failures += 1
                    if len(tally.errors) < 5:
                        tally.errors.append(traceback.format_exc()[-1500:])
                continue
            with lock:
                tally.histories += 1
                tally.stale += stale
                done[0] += 1
                progress = done[0]
            if on_progress is not None and n % 25 == 0:
                on_progress(progress)

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=600)
    return tally


SETTINGS = {
    "policy": RoutingPolicy(max_lag_s=2.0, tolerable_lag_s=30.0, min_replicas=1),
    "reads": ReadSettings(token_wait_s=0.05, probe_interval_s=0.2, eject_s=0.2, max_eject_s=1.0),
    "retry": RetryPolicy(attempts=4),
}
"""The Database settings of these tests, for the sync and the async twin alike."""


def run_async_histories(
    primary_url: str,
    replica_urls: Sequence[str],
    *,
    count: int,
    with_tokens: bool,
    tasks: int = 8,
    keys_per_task: int = 100,
    seed: int = 7,
    base_key: int = 0,
    before_read: Callable[[], None] | None = None,
) -> tuple[Tally, InMemoryMetrics]:
    """The histories of :func:`run_histories` through an :class:`AsyncDatabase`, as tasks.

    *before_read* (blocking) runs on a worker thread between each write and its
    read. Returns the tally and the metrics of that database.
    """
    tally = Tally()

    async def worker(db: AsyncDatabase, t: int) -> None:
        rng = random.Random(seed * 1000 + t)
        keys = range(base_key + t * keys_per_task, base_key + (t + 1) * keys_per_task)
        repo = db.repository(Item)
        for _ in range(count // tasks):
            key = rng.choice(keys)
            value = rng.randrange(1, 2**31)

            async def write(uow: object, key: int = key, value: int = value) -> None:
                items = uow.repository(Item)  # type: ignore[attr-defined]
                found = await items.get(key)
                if found is None:
                    await items.add(Item(id=key, value=value))
                else:
                    await items.update(found, value=value)

            try:
                token = await (await db.run(write, retry=True)).token()
                if before_read is not None:
                    await asyncio.to_thread(before_read)
                got = await repo.get(key, token=token if with_tokens else None)
            except Exception:  # counted and reported by the test
                tally.failures += 1
                if len(tally.errors) < 5:
                    tally.errors.append(traceback.format_exc()[-1500:])
                continue
            tally.histories += 1
            tally.stale += got is None or got.value != value

    metrics = InMemoryMetrics()

    async def main() -> None:
        topology = ReplicatedTopology.from_urls(
            primary_url, list(replica_urls), asyncio=True, pool_size=8
        )
        db = AsyncDatabase(topology, metrics=metrics, **SETTINGS)
        try:
            await db.probe()
            await asyncio.gather(*(worker(db, t) for t in range(tasks)))
        finally:
            await db.dispose()

    asyncio.run(main())
    return tally, metrics


@contextmanager
def replicated_database(
    primary_url: str, replica_urls: Sequence[str], wait_caught_up: Callable[[], None]
) -> Iterator[tuple[Database, InMemoryMetrics]]:
    """A Database over a real primary and replicas, tuned for fault tests, on fresh tables."""
    topology = ReplicatedTopology.from_urls(primary_url, list(replica_urls), pool_size=8)
    metrics = InMemoryMetrics()
    db = Database(topology, metrics=metrics, **SETTINGS)
    HBase.metadata.drop_all(topology.primary.engine)
    db.create_all(HBase.metadata)
    wait_caught_up()
    try:
        yield db, metrics
    finally:
        db.close()
        topology.dispose()


def reads(metrics: InMemoryMetrics) -> tuple[float, float]:
    """Reads served so far by replicas and by the primary."""
    return (
        metrics.value(f"{M}reads_total", role="replica"),
        metrics.value(f"{M}reads_total", role="primary"),
    )


@attrs.frozen
class Served:
    """Where routed reads went between two snapshots, and why the primary served any."""

    replica: float
    primary: float
    fallbacks: dict[str, float]
    """Reads the primary served, by reason (reasons seen only)."""
    waits_timed_out: float
    """Token waits on a replica that ran out of ``token_wait_s``."""


def served(metrics: InMemoryMetrics, since: MetricsSnapshot | None = None) -> Served:
    """What :class:`Served` says of the reads since *since* (None: since the start)."""
    now = metrics.snapshot()

    def delta(name: str) -> dict[tuple[tuple[str, str], ...], float]:
        before = {} if since is None else since.series(f"{M}{name}")
        return {k: v - before.get(k, 0.0) for k, v in now.series(f"{M}{name}").items()}

    by_role = {dict(k)["role"]: v for k, v in delta("reads_total").items()}
    waits = {dict(k)["outcome"]: v for k, v in delta("token_waits_total").items()}
    return Served(
        replica=by_role.get("replica", 0.0),
        primary=by_role.get("primary", 0.0),
        fallbacks={dict(k)["reason"]: v for k, v in delta("fallbacks_total").items() if v},
        waits_timed_out=waits.get("timeout", 0.0),
    )
