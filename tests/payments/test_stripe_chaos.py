"""The seeded chaos test on StripeGateway: 10,000 payments through a fault-injecting transport.

The transport wraps an in-process imitation of Stripe (tests/payments/fake_stripe.py)
that does not deduplicate idempotency keys, so only the service prevents
double charges; a smaller seeded run against real localstripe is in
tests/integration/test_localstripe.py.
"""

from __future__ import annotations

import enum
import json
import os
import random
import time
from collections import Counter

from commercekit.errors import OutcomeUnknownError, UnavailableError
from commercekit.payments import (
    HttpRequest,
    HttpResponse,
    HttpTransport,
    IdempotencyStore,
    InMemoryIdempotencyStore,
    MockTransport,
    StripeGateway,
)
from tests.payments.chaos import Tally, World, run_once
from tests.payments.fake_stripe import FakeStripe

RUNS = int(os.environ.get("COMMERCEKIT_CHAOS_RUNS", "10000"))
BATCH = 50


class Fault(enum.Enum):
    RESET_BEFORE_SEND = "reset_before_send"
    RESET_AFTER_COMMIT = "reset_after_commit"
    TIMEOUT_BEFORE_COMMIT = "timeout_before_commit"
    TIMEOUT_AFTER_COMMIT = "timeout_after_commit"
    HTTP_500 = "http_500"
    HTTP_500_AFTER_COMMIT = "http_500_after_commit"
    HTTP_429 = "http_429"
    HTTP_409 = "http_409"


def _status(code: int, **headers: str) -> HttpResponse:
    return HttpResponse(code, headers, json.dumps({"error": {"type": "api_error"}}).encode())


class FaultTransport:
    """Wraps a transport and injects one seeded fault into some requests."""

    def __init__(self, inner: HttpTransport, rng: random.Random, rate: float) -> None:
        self.inner = inner
        self.rng = rng
        self.rate = rate
        self.enabled = True
        self.injected: Counter[str] = Counter()

    def handle(self, request: HttpRequest) -> HttpResponse:
        if not self.enabled or self.rng.random() >= self.rate:
            return self.inner.handle(request)
        fault = self.rng.choice(list(Fault))
        self.injected[fault.value] += 1
        match fault:
            case Fault.RESET_BEFORE_SEND:
                raise UnavailableError("connection reset before the request was sent")
            case Fault.TIMEOUT_BEFORE_COMMIT:
                raise OutcomeUnknownError("read timed out")
            case Fault.HTTP_500:
                return _status(500)
            case Fault.HTTP_429:
                return _status(429, **{"Retry-After": "1"})
            case Fault.HTTP_409:
                return _status(409)
        self.inner.handle(request)  # the provider commits; the answer is lost
        if fault is Fault.HTTP_500_AFTER_COMMIT:
            return _status(500)
        raise OutcomeUnknownError("connection reset after the request was sent")


class FakeStripeProvider:
    def __init__(self, fake: FakeStripe) -> None:
        self.fake = fake

    def executed(self, payment_id: str) -> Counter[str]:
        return Counter(
            {k: n for k, n in self.fake.changes.items() if k.startswith(f"{payment_id}:")}
        )

    def books(self, reference: str) -> tuple[int, int, int]:
        return self.fake.books(reference)

    def authenticate(self, reference: str, success: bool) -> None:
        self.fake.authenticate(reference, success)


def stripe_world(store: IdempotencyStore, seed: int) -> tuple[World, FaultTransport]:
    fake = FakeStripe(honor_idempotency_keys=False)
    transport = FaultTransport(MockTransport(fake), random.Random(seed), rate=0.2)
    gateway = StripeGateway("sk_test_chaos", transport=transport, base_url="https://stripe.test")

    def switch(on: bool) -> None:
        transport.enabled = on

    return World(gateway, store, FakeStripeProvider(fake), switch, single_capture=True), transport


def test_chaos_stripe_gateway_over_a_faulty_transport() -> None:
    started = time.perf_counter()
    tally = Tally()
    injected: Counter[str] = Counter()
    for start in range(0, RUNS, BATCH):
        world, transport = stripe_world(InMemoryIdempotencyStore(), 31 * start + 5)
        for i in range(start, min(start + BATCH, RUNS)):
            run_once(world, 900_000_000 + i, tally)
        injected += transport.injected
    print(
        f"\nstripe+fake: {tally.runs} runs in {time.perf_counter() - started:.1f} s, "
        f"{sum(injected.values())} faults {dict(injected)}, {tally.crashes} crashes, "
        f"{tally.refused_over} refused, finals {dict(tally.finals)}, "
        f"failures {tally.failures() or 'none'}"
    )
    assert tally.runs == RUNS
    assert tally.failures() == {}
    assert set(injected) == {f.value for f in Fault}
