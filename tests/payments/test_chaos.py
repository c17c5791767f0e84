"""The seeded chaos test on SandboxGateway: 10,000 payments under injected faults.

The sandbox is set up as the least helpful provider: it does not deduplicate
idempotency keys and accepts over-captures and over-refunds, so every
guarantee measured here comes from PaymentService and the ledger alone.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from commercekit.payments import (
    IdempotencyStore,
    InMemoryIdempotencyStore,
    SandboxFault,
    SandboxGateway,
    SqlAlchemyIdempotencyStore,
)
from tests.payments.chaos import Tally, World, run_once

RUNS = int(os.environ.get("COMMERCEKIT_CHAOS_RUNS", "10000"))
FAULT_RATE = 0.25


class SandboxProvider:
    def __init__(self, gateway: SandboxGateway) -> None:
        self.gateway = gateway
        self.seen = 0

    def executed(self, payment_id: str) -> Counter[str]:
        operations = self.gateway.operations[self.seen :]
        self.seen += len(operations)
        return Counter(key for key, _ in operations if key.startswith(f"{payment_id}:"))

    def books(self, reference: str) -> tuple[int, int, int]:
        authorized, captured, refunded, _ = self.gateway.charge(reference)
        return authorized, captured, refunded

    def authenticate(self, reference: str, success: bool) -> None:
        self.gateway.authenticate(reference, success=success)


def sandbox_world(store: IdempotencyStore, seed: int) -> tuple[World, Counter[str]]:
    rng = random.Random(seed)
    enabled = [True]
    injected: Counter[str] = Counter()
    kinds = list(SandboxFault)

    def faults(operation: str, key: str) -> SandboxFault | None:
        if enabled[0] and rng.random() < FAULT_RATE:
            fault = rng.choice(kinds)
            injected[fault.value] += 1
            return fault
        return None

    def switch(on: bool) -> None:
        enabled[0] = on

    gateway = SandboxGateway(honor_idempotency_keys=False, strict=False, faults=faults)
    world = World(gateway, store, SandboxProvider(gateway), switch)
    return world, injected


BATCH = 250
"""Runs that share one gateway and one store (a fresh pair per batch keeps checks cheap)."""


def run_chaos(
    make_store: Callable[[], IdempotencyStore], runs: int, seed: int
) -> tuple[Tally, Counter[str]]:
    tally = Tally()
    injected: Counter[str] = Counter()
    for start in range(0, runs, BATCH):
        world, faults = sandbox_world(make_store(), seed * 7919 + start)
        for i in range(start, min(start + BATCH, runs)):
            run_once(world, seed * 1_000_003 + i, tally)
        injected += faults
    return tally, injected


def report(name: str, tally: Tally, injected: Counter[str], seconds: float) -> None:
    print(
        f"\n{name}: {tally.runs} runs in {seconds:.1f} s, {sum(injected.values())} faults "
        f"injected {dict(injected)}, {tally.crashes} crashes before commit, "
        f"{tally.refused_over} over-captures/refunds refused, finals {dict(tally.finals)}, "
        f"failures {tally.failures() or 'none'}"
    )


def test_chaos_sandbox_in_memory_store() -> None:
    started = time.perf_counter()
    tally, injected = run_chaos(InMemoryIdempotencyStore, RUNS, seed=1)
    report("sandbox+memory", tally, injected, time.perf_counter() - started)
    assert tally.runs == RUNS
    assert tally.failures() == {}
    assert sum(injected.values()) > RUNS  # faults really struck, of every kind
    assert set(injected) == {f.value for f in SandboxFault}
    assert tally.crashes > RUNS // 100
    assert tally.refused_over > 0


@pytest.mark.parametrize("runs", [max(RUNS // 20, 1)])
def test_chaos_sandbox_sqlite_store(runs: int) -> None:
    def make_store() -> IdempotencyStore:
        engine = sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        store = SqlAlchemyIdempotencyStore(engine)
        store.create_tables()
        return store

    started = time.perf_counter()
    tally, injected = run_chaos(make_store, runs, seed=2)
    report("sandbox+sqlite", tally, injected, time.perf_counter() - started)
    assert tally.runs == runs
    assert tally.failures() == {}
