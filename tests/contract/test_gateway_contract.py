"""The contract every PaymentGateway keeps under PaymentService: sandbox, Stripe, Adyen, Amazon Pay.

Each backend runs against its imitation (the sandbox in process, Stripe and
Adyen through MockTransport, Amazon Pay over loopback HTTP), and so does each
async twin (AsyncPaymentService over AsyncSandboxGateway, and AsyncStripeGateway
and AsyncAdyenGateway over AiohttpTransport (the async default) to the same imitations served on
loopback HTTPS, AsyncAmazonPayGateway to Amazon Pay's over loopback HTTP),
called through an event loop in a thread. The same lives must end the same
way: an approved authorization (after the customer's action where the
provider asks for one) captured once and refunded in parts, a decline with a
standard code, a void, keyed retries that replay, and a lookup that never
reports what did not happen.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from anyio.from_thread import BlockingPortal

from commercekit.errors import InvalidInputError, InvalidStateError
from commercekit.money import Money
from commercekit.payments import (
    ActionRequired,
    AdyenGateway,
    AiohttpTransport,
    AmazonPayGateway,
    AnyResult,
    AsyncAdyenGateway,
    AsyncAmazonPayGateway,
    AsyncPaymentService,
    AsyncSandboxGateway,
    AsyncStripeGateway,
    Card,
    InMemoryIdempotencyStore,
    MockTransport,
    Operation,
    PaymentGateway,
    PaymentResult,
    PaymentService,
    PaymentSource,
    PaymentState,
    ProviderToken,
    SandboxGateway,
    StripeGateway,
)
from tests.payments.blocking import Blocking, portal
from tests.payments.fake_adyen import FakeAdyen
from tests.payments.fake_amazonpay import FakeAmazonPay, merchant_key, serve
from tests.payments.fake_stripe import FakeStripe
from tests.payments.test_amazonpay import KEY_ID, config_for
from tests.payments.tls_server import tls_server

OK, DECLINED = "4242424242424242", "4000000000000002"


@attrs.frozen
class Backend:
    gateway: PaymentGateway
    source: Callable[[str], PaymentSource]  # a card number's scenario -> what to pay with
    customer_acts: Callable[[str], None]  # the customer passes the action on this reference
    loop: BlockingPortal | None = None  # set for an async gateway: its calls run here

    def service(self) -> PaymentService:
        """A payment service over the gateway: the sync one, or the async twin made blocking."""
        if self.loop is None:
            return PaymentService(self.gateway, InMemoryIdempotencyStore())
        inner: Any = self.gateway._target  # type: ignore[attr-defined]
        twin = AsyncPaymentService(inner, InMemoryIdempotencyStore())
        return Blocking(twin, self.loop)  # type: ignore[return-value]


def _card(number: str) -> PaymentSource:
    return Card(number, 12, 2031, cvv="123")


@pytest.fixture(
    params=[
        "sandbox",
        "stripe",
        "adyen",
        "amazonpay",
        "async-sandbox",
        "async-stripe",
        "async-adyen",
        "async-amazonpay",
    ]
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param.startswith("async-"):
        yield from async_backend(request.param)
        return
    if request.param == "sandbox":
        sandbox = SandboxGateway()
        yield Backend(sandbox, _card, lambda ref: sandbox.authenticate(ref, success=True))
    elif request.param == "stripe":
        stripe = FakeStripe()
        gateway = StripeGateway(
            "sk_test_contract", transport=MockTransport(stripe), base_url="https://stripe.test"
        )
        yield Backend(gateway, _card, lambda ref: stripe.authenticate(ref, True))
    elif request.param == "adyen":
        adyen = FakeAdyen()
        adyen_gateway = AdyenGateway(
            "AQE_test_key",
            "ShopECOM",
            return_url="https://shop.test/return",
            transport=MockTransport(adyen),
            base_url="https://checkout-test.adyen.test/v71",
        )

        def adyen_acts(ref: str) -> None:
            adyen_gateway.shopper_returned(ref, {"redirectResult": adyen.authenticate(ref, True)})

        yield Backend(adyen_gateway, _card, adyen_acts)
    else:
        amazon = FakeAmazonPay(merchant_key().public_key(), public_key_id=KEY_ID)
        with serve(amazon) as url:
            amazon_gateway = AmazonPayGateway(config_for(url), return_url="https://shop.test/r")

            def buyer(number: str) -> PaymentSource:
                return ProviderToken(amazon.buyer_starts("ok" if number == OK else "declined"))

            yield Backend(amazon_gateway, buyer, amazon.buyer_pays)
        assert amazon.rejected == []


def async_backend(kind: str) -> Iterator[Backend]:
    """An async gateway over its imitation, its coroutines run on a loop in a thread."""
    with portal() as loop:
        if kind == "async-sandbox":
            sandbox = SandboxGateway()
            gateway: Any = AsyncSandboxGateway(sandbox)
            yield Backend(Blocking(gateway, loop), _card, sandbox.authenticate, loop)
            return
        if kind == "async-amazonpay":
            amazon = FakeAmazonPay(merchant_key().public_key(), public_key_id=KEY_ID)
            with serve(amazon) as url:
                transport = loop.call(AiohttpTransport)
                gateway = AsyncAmazonPayGateway(
                    config_for(url), return_url="https://shop.test/r", transport=transport
                )

                def buyer(number: str) -> PaymentSource:
                    return ProviderToken(amazon.buyer_starts("ok" if number == OK else "declined"))

                try:
                    yield Backend(Blocking(gateway, loop), buyer, amazon.buyer_pays, loop)
                finally:
                    loop.call(transport.aclose)
            assert amazon.rejected == []
            return
        fake: Any = FakeStripe() if kind == "async-stripe" else FakeAdyen()
        with tls_server(fake) as (url, certificate, _):
            context = certificate.client_context()
            transport = loop.call(functools.partial(AiohttpTransport, ssl_context=context))
            try:
                if kind == "async-stripe":
                    gateway = AsyncStripeGateway("sk_test", transport=transport, base_url=url)

                    def acts(ref: str) -> None:
                        fake.authenticate(ref, True)

                else:
                    gateway = AsyncAdyenGateway(
                        "AQE_test_key",
                        "ShopECOM",
                        return_url="https://shop.test/return",
                        transport=transport,
                        base_url=url + "/v71",
                    )

                    def acts(ref: str) -> None:
                        details = {"redirectResult": fake.authenticate(ref, True)}
                        gateway.shopper_returned(ref, details)

                yield Backend(Blocking(gateway, loop), _card, acts, loop)
            finally:
                loop.call(transport.aclose)


def _authorized(backend: Backend, service: PaymentService, pid: str, number: str) -> AnyResult:
    result = service.authorize(pid, Money.of("40.00", "USD"), backend.source(number))
    if isinstance(result, ActionRequired):
        assert result.reference
        backend.customer_acts(result.reference)
        result = service.complete_action(pid)
    return result


def test_authorize_capture_once_and_refund_in_parts(backend: Backend) -> None:
    service = backend.service()
    result = _authorized(backend, service, "c-1", OK)
    assert result.approved
    assert result.status is PaymentState.AUTHORIZED
    capture = service.capture("c-1", Money.of("30.00", "USD"), idempotency_key="c-1:cap")
    assert capture.approved
    assert service.payment("c-1").captured_minor == 3000
    again = service.capture("c-1", Money.of("30.00", "USD"), idempotency_key="c-1:cap")
    assert again == capture  # a keyed retry replays
    service.refund("c-1", Money.of("10.00", "USD"))
    service.refund("c-1", Money.of("20.00", "USD"))
    assert service.payment("c-1").state is PaymentState.REFUNDED
    with pytest.raises((InvalidInputError, InvalidStateError)):
        service.refund("c-1", Money.of("0.01", "USD"))


def test_a_decline_is_a_result_with_a_standard_code(backend: Backend) -> None:
    service = backend.service()
    result = _authorized(backend, service, "c-2", DECLINED)
    assert isinstance(result, PaymentResult)
    assert not result.approved
    assert result.decline_code is not None
    assert service.payment("c-2").state is PaymentState.FAILED


def test_void_releases_the_authorization(backend: Backend) -> None:
    service = backend.service()
    assert _authorized(backend, service, "c-3", OK).approved
    assert service.void("c-3").status is PaymentState.VOIDED
    with pytest.raises(InvalidStateError):
        service.capture("c-3", Money.of("1.00", "USD"))


def test_lookup_never_reports_what_did_not_happen(backend: Backend) -> None:
    service = backend.service()
    assert _authorized(backend, service, "c-4", OK).approved
    reference = service.payment("c-4").reference
    assert reference is not None
    before = backend.gateway.lookup(
        Operation.CAPTURE, idempotency_key="c-4:cap", reference=reference
    )
    assert before is None  # nothing was captured yet
    done = service.capture("c-4", Money.of("40.00", "USD"), idempotency_key="c-4:cap")
    after = backend.gateway.lookup(
        Operation.CAPTURE, idempotency_key="c-4:cap", reference=reference
    )
    assert after is None or (after.approved and after.amount == done.amount)
