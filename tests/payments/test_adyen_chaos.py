"""The seeded chaos test on AdyenGateway, through a fault-injecting transport.

The transport wraps an in-process imitation of Adyen's Checkout API
(tests/payments/fake_adyen.py). Adyen cannot be searched by idempotency key,
so after a lost answer the service resends with the same key and relies on
Adyen answering a repeated key with its first response, as the imitation
does; every other guarantee (no over-capture or over-refund, one operation per
payment at a time, crash recovery) comes from the service and the ledger.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter

from commercekit.payments import (
    AdyenGateway,
    IdempotencyStore,
    InMemoryIdempotencyStore,
    MockTransport,
)
from tests.payments.chaos import Tally, World, run_once
from tests.payments.fake_adyen import FakeAdyen
from tests.payments.test_stripe_chaos import Fault, FaultTransport

RUNS = max(int(os.environ.get("COMMERCEKIT_CHAOS_RUNS", "10000")) // 2, 1)
BATCH = 50


class FakeAdyenProvider:
    def __init__(self, fake: FakeAdyen, gateway: AdyenGateway) -> None:
        self.fake = fake
        self.gateway = gateway

    def executed(self, payment_id: str) -> Counter[str]:
        return Counter(
            {k: n for k, n in self.fake.changes.items() if k.startswith(f"{payment_id}:")}
        )

    def books(self, reference: str) -> tuple[int, int, int]:
        return self.fake.books(reference)

    def authenticate(self, reference: str, success: bool) -> None:
        token = self.fake.authenticate(reference, success)
        self.gateway.shopper_returned(reference, {"redirectResult": token})


def adyen_world(store: IdempotencyStore, seed: int) -> tuple[World, FaultTransport]:
    fake = FakeAdyen()
    transport = FaultTransport(MockTransport(fake), random.Random(seed), rate=0.2)
    gateway = AdyenGateway(
        "AQE_test_key",
        "ShopECOM",
        return_url="https://shop.test/return",
        transport=transport,
        base_url="https://checkout-test.adyen.test/v71",
    )

    def switch(on: bool) -> None:
        transport.enabled = on

    provider = FakeAdyenProvider(fake, gateway)
    return World(gateway, store, provider, switch, single_capture=True), transport


def test_chaos_adyen_gateway_over_a_faulty_transport() -> None:
    started = time.perf_counter()
    tally = Tally()
    injected: Counter[str] = Counter()
    for start in range(0, RUNS, BATCH):
        world, transport = adyen_world(InMemoryIdempotencyStore(), 37 * start + 11)
        for i in range(start, min(start + BATCH, RUNS)):
            run_once(world, 700_000_000 + i, tally)
        injected += transport.injected
    print(
        f"\nadyen+fake: {tally.runs} runs in {time.perf_counter() - started:.1f} s, "
        f"{sum(injected.values())} faults {dict(injected)}, {tally.crashes} crashes, "
        f"{tally.refused_over} refused, finals {dict(tally.finals)}, "
        f"failures {tally.failures() or 'none'}"
    )
    assert tally.runs == RUNS
    assert tally.failures() == {}
    assert set(injected) == {f.value for f in Fault}
