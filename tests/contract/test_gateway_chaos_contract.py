"""The chaos contract every PaymentGateway keeps under PaymentService, sync and async.

One seeded harness (tests/payments/chaos.py) drives each backend: the
sandbox (with its own fault injection), and Stripe and Adyen through a
fault-injecting transport around their in-process imitations, each through
the sync service and through :class:`AsyncPaymentService` over the async
twin. The providers are made unhelpful (the sandbox and the Stripe imitation
do not deduplicate keys; the sandbox accepts over-captures and over-refunds),
so every guarantee measured comes from the service and the ledger: no double
charge, capture or refund, no lost operation, every payment settled.
Amazon Pay's chaos run, over loopback HTTP, is tests/payments/test_amazonpay_chaos.py.

``COMMERCEKIT_CHAOS_RUNS`` sets the size N: 5,000 by default and 10,000 with
``COMMERCEKIT_STRESS=1``, for the sync sandbox and Stripe; N/2 for Adyen;
N/20 on SQLite and for each async twin (whose calls each cross a thread to
the event loop).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from anyio.from_thread import BlockingPortal
from sqlalchemy.pool import StaticPool

from commercekit.payments import (
    AdyenGateway,
    AsyncAdyenGateway,
    AsyncSandboxGateway,
    AsyncStripeGateway,
    IdempotencyStore,
    InMemoryIdempotencyStore,
    MockTransport,
    SandboxFault,
    SandboxGateway,
    SqlAlchemyIdempotencyStore,
    StripeGateway,
)
from tests.payments.blocking import portal
from tests.payments.chaos import AsyncFaultTransport, Fault, FaultTransport, Tally, World, run_once
from tests.payments.fake_adyen import FakeAdyen
from tests.payments.fake_stripe import FakeStripe

RUNS = int(
    os.environ.get("COMMERCEKIT_CHAOS_RUNS")
    or ("10000" if os.environ.get("COMMERCEKIT_STRESS") else "5000")
)
FAULT_RATE = 0.25


@attrs.frozen
class Case:
    """One backend in one mode: how many runs, in batches sharing one world."""

    name: str
    runs: int
    batch: int
    build: Callable[[IdempotencyStore, int, BlockingPortal | None], tuple[World, Counter[str]]]
    kinds: frozenset[str]
    store: Callable[[], IdempotencyStore] = InMemoryIdempotencyStore
    mode: str = "sync"


# -- the sandbox ----------------------------------------------------------------------------


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


def sandbox_world(
    store: IdempotencyStore, seed: int, loop: BlockingPortal | None
) -> tuple[World, Counter[str]]:
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

    sandbox = SandboxGateway(honor_idempotency_keys=False, strict=False, faults=faults)
    gateway: Any = sandbox if loop is None else AsyncSandboxGateway(sandbox)
    return World(gateway, store, SandboxProvider(sandbox), switch, loop=loop), injected


def sqlite_store() -> IdempotencyStore:
    engine = sa.create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    store = SqlAlchemyIdempotencyStore(engine)
    store.create_tables()
    return store


# -- Stripe and Adyen through a faulty transport ---------------------------------------------


class FakeProvider:
    def __init__(self, fake: Any, on_return: Callable[[str, str], None] | None = None) -> None:
        self.fake = fake
        self.on_return = on_return

    def executed(self, payment_id: str) -> Counter[str]:
        changes = self.fake.changes.items()
        return Counter({k: n for k, n in changes if k.startswith(f"{payment_id}:")})

    def books(self, reference: str) -> tuple[int, int, int]:
        books: tuple[int, int, int] = self.fake.books(reference)
        return books

    def authenticate(self, reference: str, success: bool) -> None:
        token = self.fake.authenticate(reference, success)
        if self.on_return is not None:
            self.on_return(reference, token)


def stripe_world(
    store: IdempotencyStore, seed: int, loop: BlockingPortal | None
) -> tuple[World, Counter[str]]:
    fake = FakeStripe(honor_idempotency_keys=False)
    faulty = FaultTransport(MockTransport(fake), random.Random(seed), rate=0.2)
    url = "https://stripe.test"
    gateway: Any = (
        StripeGateway("sk_test_chaos", transport=faulty, base_url=url)
        if loop is None
        else AsyncStripeGateway(
            "sk_test_chaos", transport=AsyncFaultTransport(faulty), base_url=url
        )
    )

    def switch(on: bool) -> None:
        faulty.enabled = on

    world = World(gateway, store, FakeProvider(fake), switch, single_capture=True, loop=loop)
    return world, faulty.injected


def adyen_world(
    store: IdempotencyStore, seed: int, loop: BlockingPortal | None
) -> tuple[World, Counter[str]]:
    fake = FakeAdyen()
    faulty = FaultTransport(MockTransport(fake), random.Random(seed), rate=0.2)
    options: dict[str, Any] = {
        "return_url": "https://shop.test/return",
        "base_url": "https://checkout-test.adyen.test/v71",
    }
    gateway: Any = (
        AdyenGateway("AQE_test_key", "ShopECOM", transport=faulty, **options)
        if loop is None
        else AsyncAdyenGateway(
            "AQE_test_key", "ShopECOM", transport=AsyncFaultTransport(faulty), **options
        )
    )

    def returned(reference: str, token: str) -> None:
        gateway.shopper_returned(reference, {"redirectResult": token})

    def switch(on: bool) -> None:
        faulty.enabled = on

    provider = FakeProvider(fake, returned)
    world = World(gateway, store, provider, switch, single_capture=True, loop=loop)
    return world, faulty.injected


SANDBOX_KINDS = frozenset(f.value for f in SandboxFault)
HTTP_KINDS = frozenset(f.value for f in Fault)
SMALL = max(RUNS // 20, 1)

CASES = [
    Case("sandbox", RUNS, 250, sandbox_world, SANDBOX_KINDS),
    Case("sandbox-sqlite", SMALL, 250, sandbox_world, SANDBOX_KINDS, store=sqlite_store),
    Case("stripe", RUNS, 50, stripe_world, HTTP_KINDS),
    Case("adyen", max(RUNS // 2, 1), 50, adyen_world, HTTP_KINDS),
    Case("async-sandbox", SMALL, 250, sandbox_world, SANDBOX_KINDS, mode="async"),
    Case("async-stripe", SMALL, 50, stripe_world, HTTP_KINDS, mode="async"),
    Case("async-adyen", SMALL, 50, adyen_world, HTTP_KINDS, mode="async"),
]


@contextmanager
def loop_for(case: Case) -> Iterator[BlockingPortal | None]:
    if case.mode == "sync":
        yield None
        return
    with portal() as loop:
        yield loop


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_no_payment_is_charged_twice_or_lost_under_faults(case: Case) -> None:
    started = time.perf_counter()
    tally = Tally()
    injected: Counter[str] = Counter()
    with loop_for(case) as loop:
        for start in range(0, case.runs, case.batch):
            world, faults = case.build(case.store(), 7919 * start + len(case.name), loop)
            for i in range(start, min(start + case.batch, case.runs)):
                run_once(world, 1_000_003 * len(case.name) + i, tally)
            injected += faults
    print(
        f"\n{case.name}: {tally.runs} runs in {time.perf_counter() - started:.1f} s, "
        f"{sum(injected.values())} faults {dict(injected)}, {tally.crashes} crashes before "
        f"commit, {tally.refused_over} over-captures/refunds refused, finals "
        f"{dict(tally.finals)}, failures {tally.failures() or 'none'}"
    )
    assert tally.runs == case.runs
    assert tally.failures() == {}
    if case.runs >= 200:  # big enough for every kind of fault to have struck
        assert set(injected) == case.kinds
        assert tally.crashes > 0
    if case.name == "sandbox" and case.runs >= 1000:
        assert sum(injected.values()) > case.runs
        assert tally.crashes > case.runs // 100
        assert tally.refused_over > 0
