"""The seeded chaos run on AmazonPayGateway, over real HTTP to the loopback imitation of Amazon Pay.

The same harness as the other gateways (tests/payments/chaos.py): faults at
the transport (resets before sending and after Amazon committed, timeouts,
500s, 429 with Retry-After, 409) and crashes between Amazon's answer and the
local commit. The shop's checkout (:class:`ShopCheckout`) hands the gateway
the buyer's Checkout Session for the harness's card, as a browser brings it
back from Amazon's button. A charge is counted against the payment's
authorization key, captures and refunds against their own keys.

``COMMERCEKIT_AMAZONPAY_CHAOS_RUNS`` sets the number of runs (200 by default;
5,000 for the full figure in docs/payments.md).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from commercekit.money import Currency, Money
from commercekit.payments import (
    ISO_AMOUNTS,
    AmazonPayGateway,
    AnyResult,
    Card,
    GatewayCapabilities,
    InMemoryIdempotencyStore,
    Operation,
    PaymentResult,
    PaymentSource,
    ProviderToken,
    UrllibTransport,
)
from commercekit.payments._amazonpay._wire import amazon_pay_idempotency_key
from tests.payments.chaos import CARDS, Fault, FaultTransport, Tally, World, run_once
from tests.payments.fake_amazonpay import FakeAmazonPay, merchant_key, serve
from tests.payments.test_amazonpay import KEY_ID, config_for

RUNS = int(os.environ.get("COMMERCEKIT_AMAZONPAY_CHAOS_RUNS", "200"))
BATCH = 50
SCENARIOS = {CARDS["declined"]: "declined", CARDS["funds"]: "declined"}


class ShopCheckout:
    """The shop: the buyer's session comes from Amazon's button; keys are remembered."""

    def __init__(self, gateway: AmazonPayGateway, fake: FakeAmazonPay) -> None:
        self.gateway = gateway
        self.fake = fake
        self.sessions: dict[str, str] = {}  # authorization key -> the buyer's session
        self.keys: dict[str, str] = {}  # Amazon's key -> ours

    @property
    def name(self) -> str:
        return self.gateway.name

    @property
    def capabilities(self) -> GatewayCapabilities:
        return self.gateway.capabilities

    def _session(self, source: PaymentSource, key: str) -> ProviderToken:
        if key not in self.sessions:
            assert isinstance(source, Card)
            scenario = SCENARIOS.get(source.number.reveal(), "ok")
            self.sessions[key] = self.fake.buyer_starts(scenario)
        return ProviderToken(self.sessions[key])

    def _key(self, key: str) -> str:
        self.keys[amazon_pay_idempotency_key(key)] = key
        return key

    def authorize(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        token = self._session(source, idempotency_key)
        return self.gateway.authorize(amount, token, idempotency_key=self._key(idempotency_key))

    def purchase(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        token = self._session(source, idempotency_key)
        return self.gateway.purchase(amount, token, idempotency_key=self._key(idempotency_key))

    def verify(
        self, source: PaymentSource, currency: Currency, *, idempotency_key: str
    ) -> PaymentResult:
        return self.gateway.verify(source, currency, idempotency_key=idempotency_key)

    def capture(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        return self.gateway.capture(reference, amount, idempotency_key=self._key(idempotency_key))

    def void(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        return self.gateway.void(reference, idempotency_key=self._key(idempotency_key))

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        return self.gateway.refund(reference, amount, idempotency_key=self._key(idempotency_key))

    def complete_action(self, reference: str, *, idempotency_key: str) -> AnyResult:
        return self.gateway.complete_action(reference, idempotency_key=idempotency_key)

    def lookup(
        self, operation: Operation, *, idempotency_key: str, reference: str | None
    ) -> AnyResult | None:
        return self.gateway.lookup(operation, idempotency_key=idempotency_key, reference=reference)


class FakeAmazonProvider:
    def __init__(self, fake: FakeAmazonPay, shop: ShopCheckout) -> None:
        self.fake = fake
        self.shop = shop

    def executed(self, payment_id: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        mine = f"{payment_id}:"
        with self.fake.lock:
            for key, sid in self.shop.sessions.items():
                if key.startswith(mine):  # every charge a session made counts against its key
                    counts[key] += self.fake.effects[("charge-of-session", sid)]
            for sent, key in self.shop.keys.items():
                if key.startswith(mine):
                    counts[key] += sum(self.fake.effects[(w, sent)] for w in ("capture", "refund"))
        return +counts

    def books(self, reference: str) -> tuple[int, int, int]:
        return self.fake.books(reference)

    def authenticate(self, reference: str, success: bool) -> None:
        self.fake.buyer_pays(reference, success)


@pytest.fixture(scope="module")
def amazon() -> Iterator[tuple[FakeAmazonPay, str]]:
    fake = FakeAmazonPay(merchant_key().public_key(), public_key_id=KEY_ID)
    with serve(fake) as url:
        yield fake, url


def amazon_world(fake: FakeAmazonPay, url: str, seed: int) -> tuple[World, FaultTransport]:
    transport = FaultTransport(UrllibTransport(), random.Random(seed), rate=0.2)
    gateway = AmazonPayGateway(
        config_for(url),
        transport=transport,
        return_url="https://shop.test/amazon/done",
        amounts=ISO_AMOUNTS,  # the harness pays in USD, EUR, JPY and KWD on one account
    )
    shop = ShopCheckout(gateway, fake)

    def switch(on: bool) -> None:
        transport.enabled = on

    world = World(
        shop,
        InMemoryIdempotencyStore(),
        FakeAmazonProvider(fake, shop),
        switch,
        single_capture=True,
    )
    return world, transport


def test_chaos_amazon_pay_gateway_over_loopback_http(amazon: tuple[FakeAmazonPay, str]) -> None:
    fake, url = amazon
    started = time.perf_counter()
    tally = Tally()
    injected: Counter[str] = Counter()
    for start in range(0, RUNS, BATCH):
        world, transport = amazon_world(fake, url, 41 * start + 13)
        for i in range(start, min(start + BATCH, RUNS)):
            run_once(world, 500_000_000 + i, tally)
        injected += transport.injected
    captures = sum(1 for (what, _) in fake.effects if what == "capture")
    refunds = sum(1 for (what, _) in fake.effects if what == "refund")
    print(
        f"\namazonpay+loopback: {tally.runs} runs in {time.perf_counter() - started:.1f} s, "
        f"{len(fake.requests)} requests, {sum(injected.values())} faults {dict(injected)}, "
        f"{tally.crashes} crashes, {tally.refused_over} refused, {captures} captures, "
        f"{refunds} refunds, finals {dict(tally.finals)}, failures {tally.failures() or 'none'}"
    )
    assert tally.runs == RUNS
    assert tally.failures() == {}
    assert fake.rejected == []
    assert set(injected) == {f.value for f in Fault}
    assert captures > RUNS // 4
    assert refunds > RUNS // 4
