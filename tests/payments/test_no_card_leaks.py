"""No card number or CVV in any log record, exception message, traceback or repr.

The whole payments surface runs here (sandbox and Stripe flows, declines, 3-D
Secure, bad input, faults, the vault, webhooks) while every log record at
DEBUG, every exception (message and repr, with its causes) and the repr
of every object handed back is collected; then each text is searched for the
card numbers and the security code used. The conftest also checks the logs of
every other payments test for the test card numbers.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

import pytest

from commercekit.money import Money
from commercekit.payments import (
    AdyenGateway,
    Card,
    CardVault,
    InMemoryIdempotencyStore,
    InMemoryVaultStore,
    MockTransport,
    PaymentService,
    SandboxFault,
    SandboxGateway,
    StaticKeyRing,
    StripeGateway,
)
from tests.payments.fake_adyen import FakeAdyen
from tests.payments.fake_stripe import FakeStripe

NUMBERS = [
    "4242424242424242",
    "4000000000000002",
    "4000000000009995",
    "4000000000003220",
    "4000000000000093",
    "4000000000000119",
    "5555555555554444",
]
CVV = "9731"


def test_no_card_number_or_cvv_reaches_logs_errors_or_reprs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    texts: list[str] = []

    def attempt(action: Callable[[], object]) -> None:
        try:
            texts.append(repr(action()))
        except Exception as exc:
            seen: BaseException | None = exc
            while seen is not None:  # the error and every cause and context behind it
                texts.append(str(seen))
                texts.append(repr(seen))
                texts.append("".join(traceback.format_exception_only(seen)))
                seen = seen.__cause__ or seen.__context__

    faults = iter([SandboxFault.TIMEOUT_AFTER_COMMIT, SandboxFault.RESET_BEFORE_SEND] * 3)
    sandbox = SandboxGateway(faults=lambda op, key: next(faults, None))
    fake = FakeStripe()
    stripe = StripeGateway("sk_test_x", transport=MockTransport(fake), base_url="https://s.test")
    adyen_fake = FakeAdyen()
    adyen = AdyenGateway(
        "AQE_test_key",
        "ShopECOM",
        return_url="https://shop.test/return",
        transport=MockTransport(adyen_fake),
        base_url="https://a.test",
    )
    vault = CardVault(StaticKeyRing({"k": b"\x07" * 32}, "k"), InMemoryVaultStore())
    with caplog.at_level(logging.DEBUG):
        for name, gateway in (("sandbox", sandbox), ("stripe", stripe), ("adyen", adyen)):
            service = PaymentService(
                gateway, InMemoryIdempotencyStore(), sleep=lambda s: None, vault=vault
            )
            for i, number in enumerate(NUMBERS):
                card = Card(number, 12, 2031, cvv=CVV)
                texts += [repr(card), str(card), f"{card}", repr(card.number), str(card.cvv)]
                pid = f"{name}-{i}"
                attempt(lambda c=card, p=pid, s=service: s.authorize(p, Money.of("9.99", "USD"), c))
                attempt(lambda p=pid, s=service: s.capture(p, Money.of("99.99", "USD")))
                attempt(lambda p=pid, s=service: s.capture(p))
                attempt(lambda p=pid, s=service: s.refund(p, Money.of("0.01", "USD")))
                attempt(lambda c=card, p=pid, s=service: s.authorize(p, Money.of("1.00", "USD"), c))
                token = vault.tokenize(card)
                texts.append(repr(token))
                attempt(
                    lambda t=token, p=pid, s=service: s.purchase(
                        p + "v", Money.of("1.00", "EUR"), t
                    )
                )
            for bad in ("4242424242424241", "42424242", "4242x42424242424"):
                attempt(lambda b=bad: Card(b, 1, 2030, cvv=CVV))
            attempt(lambda: Card("4242424242424242", 1, 2030, cvv="97311"))
            texts += [repr(service), repr(gateway), repr(vault)]
        texts += [repr(r) for r in fake.requests + adyen_fake.requests]
        texts += [repr(op) for op in sandbox.operations]
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.exc_info) for record in caplog.records if record.exc_info]
    assert len(texts) > 200
    for text in texts:
        for number in NUMBERS:
            assert number not in text, "a card number leaked"
            assert number[:12] not in text, "more than the first six digits leaked"
        assert CVV not in text, "a security code leaked"
