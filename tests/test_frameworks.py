"""The framework examples' shared parts (the examples themselves run in tests/test_examples.py).

The Stripe-shaped provider keeps Stripe's idempotency and refuses a bad key;
the shop maps the error tree onto HTTP statuses and reads checkouts strictly;
the FastAPI app lets more checkouts wait on the provider than a thread pool would.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
if str(EXAMPLES) not in sys.path:  # the framework examples' package is not installed
    sys.path.insert(0, str(EXAMPLES))

from frameworks.provider import serve_provider  # noqa: E402
from frameworks.shop import (  # noqa: E402
    AsyncShop,
    CheckoutForm,
    error_answer,
    http_status,
)

from commercekit import errors  # noqa: E402
from commercekit.money import Money  # noqa: E402
from commercekit.payments import (  # noqa: E402
    HttpxTransport,
    Outcome,
    PaymentState,
    ProviderToken,
    StripeGateway,
)


def test_the_provider_answers_as_stripe_and_keeps_idempotency_keys() -> None:
    with serve_provider(delay_s=0) as provider, HttpxTransport() as transport:
        gateway = StripeGateway("sk_test_x", transport=transport, base_url=provider.url)
        token = ProviderToken("pm_card_visa")
        first = gateway.authorize(Money.of("19.99", "EUR"), token, idempotency_key="k1")
        again = gateway.authorize(Money.of("19.99", "EUR"), token, idempotency_key="k1")
        other = gateway.authorize(Money.of("5.00", "EUR"), token, idempotency_key="k2")
        assert first.outcome is Outcome.APPROVED
        assert first.status is PaymentState.AUTHORIZED
        assert first.amount == Money.of("19.99", "EUR")
        assert again.reference == first.reference != other.reference
        assert provider.calls == 3
        refused = StripeGateway("pk_wrong", transport=transport, base_url=provider.url)
        with pytest.raises(errors.ConfigurationError):
            refused.authorize(Money.of("1.00", "EUR"), token, idempotency_key="k3")


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.PrecisionError("1.999 EUR"), 400),
        (errors.SignatureError("forged"), 400),
        (errors.NotFoundError("no order"), 404),
        (errors.StaleVersionError("changed"), 409),
        (errors.InvalidTransitionError("captured twice"), 409),
        (errors.DatabaseUnavailableError("primary down"), 503),
        (errors.OutcomeUnknownError("timed out after sending"), 502),
        (errors.PaymentDeclinedError("declined"), 402),
        (errors.CommerceKitError("anything else"), 500),
    ],
)
def test_errors_map_onto_statuses(exc: errors.CommerceKitError, status: int) -> None:
    assert http_status(exc) == status


def test_a_retry_after_hint_becomes_a_header() -> None:
    status, body, headers = error_answer(errors.RateLimitedError("slow down", retry_after_s=2.4))
    assert (status, headers) == (503, {"Retry-After": "2"})
    assert body == {"error": "slow down"}


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"order_id": "o-1", "amount": "19.99", "currency": "EUR"},
        {"order_id": "o-1", "amount": 19.99, "currency": "EUR", "payment_method": "pm_x"},
        {"order_id": "", "amount": "19.99", "currency": "EUR", "payment_method": "pm_x"},
        {"order_id": "o-1", "amount": "19.999", "currency": "EUR", "payment_method": "pm_x"},
        {"order_id": "o-1", "amount": "19.99", "currency": "XXY", "payment_method": "pm_x"},
    ],
)
def test_a_bad_checkout_is_refused_with_a_typed_error(data: object) -> None:
    with pytest.raises(errors.InvalidInputError):
        CheckoutForm.parse(data)


def test_async_handlers_let_more_checkouts_wait_on_the_provider_than_the_thread_pool_has() -> None:
    """50 checkouts at once through the FastAPI app: all 50 wait on the provider together.

    No clock is read: the provider holds each call until 50 are in flight (a
    5 s timeout releases them otherwise), and counts how many it held at once.
    A handler that blocked, or a thread pool (40 threads), would let fewer through.
    """
    from frameworks.demo import checkout_body, serving
    from frameworks_fastapi import create_app

    n = 50

    async def main(provider_url: str, folder: Path) -> list[int]:
        app = create_app(AsyncShop(provider_url=provider_url, folder=folder))
        async with serving(app) as url:
            limits = httpx.Limits(max_connections=n)
            async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
                answers = await asyncio.gather(
                    *(client.post("/checkout", json=checkout_body(f"o-{i}")) for i in range(n))
                )
        return [answer.status_code for answer in answers]

    with tempfile.TemporaryDirectory() as folder, serve_provider() as provider:
        provider.hold(n, timeout_s=5.0)
        assert asyncio.run(main(provider.url, Path(folder))) == [201] * n
    assert provider.max_in_flight == n
