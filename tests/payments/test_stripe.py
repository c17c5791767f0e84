"""StripeGateway on the wire: form encoding, headers, error mapping, PaymentIntents flows."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from commercekit.errors import (
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
)
from commercekit.money import Money
from commercekit.payments import (
    ActionRequired,
    Card,
    DeclineCode,
    HttpRequest,
    HttpResponse,
    InMemoryIdempotencyStore,
    MockTransport,
    Operation,
    OperationInFlightError,
    PaymentResult,
    PaymentService,
    PaymentState,
    ProviderToken,
    RateLimitedError,
    StripeGateway,
)
from tests.payments.fake_stripe import FakeStripe

VISA = Card("4242424242424242", 12, 2031, cvv="123")


def gateway(handler: object) -> StripeGateway:
    return StripeGateway(
        "sk_test_123", transport=MockTransport(handler), base_url="https://stripe.test"
    )  # type: ignore[arg-type]


def test_the_wire_format_of_an_authorization() -> None:
    fake = FakeStripe()
    result = gateway(fake).authorize(
        Money.of("10.00", "USD"), VISA, idempotency_key="order-1:authorize"
    )
    assert isinstance(result, PaymentResult)
    assert result.status is PaymentState.AUTHORIZED
    pm, pi = fake.requests
    for request in (pm, pi):
        assert request.method == "POST"
        assert request.headers["Authorization"] == "Bearer sk_test_123"
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert "4242424242424242" not in repr(request)
    assert pm.url == "https://stripe.test/v1/payment_methods"
    assert pm.headers["Idempotency-Key"] == "order-1:authorize:pm"
    assert urllib.parse.parse_qs(pm.body.decode())["card[number]"] == ["4242424242424242"]
    assert pi.headers["Idempotency-Key"] == "order-1:authorize"
    form = urllib.parse.parse_qs(pi.body.decode())
    assert form["amount"] == ["1000"]
    assert form["currency"] == ["usd"]
    assert form["capture_method"] == ["manual"]
    assert form["confirm"] == ["true"]
    assert form["metadata[commercekit_idempotency_key]"] == ["order-1:authorize"]
    assert form["payment_method"][0].startswith("pm_")


def test_stripe_currency_rules_are_applied_before_sending() -> None:
    fake = FakeStripe()
    gw = gateway(fake)
    gw.purchase(Money.of("5", "ISK"), ProviderToken("pm_x"), idempotency_key="isk")
    assert urllib.parse.parse_qs(fake.requests[-1].body.decode())["amount"] == ["500"]
    gw.purchase(Money.of("500", "JPY"), ProviderToken("pm_x"), idempotency_key="jpy")
    assert urllib.parse.parse_qs(fake.requests[-1].body.decode())["amount"] == ["500"]
    before = len(fake.requests)
    with pytest.raises(InvalidInputError, match="steps of"):
        gw.purchase(Money.of("5.125", "KWD"), ProviderToken("pm_x"), idempotency_key="kwd")
    assert len(fake.requests) == before


def test_partial_capture_refunds_void_and_lookup() -> None:
    fake = FakeStripe()
    service = PaymentService(gateway(fake), InMemoryIdempotencyStore(), sleep=lambda s: None)
    service.authorize("o1", Money.of("10.00", "EUR"), VISA)
    assert service.capture("o1", Money.of("6.00", "EUR")).status is PaymentState.PARTIALLY_CAPTURED
    with pytest.raises(Exception, match="one capture"):
        service.capture("o1", Money.of("1.00", "EUR"))
    service.refund("o1", Money.of("2.00", "EUR"))
    assert service.refund("o1").status is PaymentState.REFUNDED
    assert fake.books(service.payment("o1").reference or "") == (1000, 600, 600)
    service.authorize("o2", Money.of("3.00", "EUR"), VISA)
    assert service.void("o2").status is PaymentState.VOIDED
    gw = gateway(fake)
    ref = service.payment("o1").reference
    found = gw.lookup(Operation.AUTHORIZE, idempotency_key="o1:authorize", reference=None)
    assert found is not None
    assert found.reference == ref
    assert gw.lookup(Operation.AUTHORIZE, idempotency_key="nope", reference=None) is None
    refund = gw.lookup(Operation.REFUND, idempotency_key="o1:refund:200:EUR", reference=ref)
    assert refund is not None
    assert refund.amount == Money.of("2.00", "EUR")
    capture = gw.lookup(Operation.CAPTURE, idempotency_key="x", reference=ref)
    assert capture is not None
    assert capture.amount == Money.of("6.00", "EUR")
    assert gw.lookup(Operation.VOID, idempotency_key="x", reference=ref) is None


def test_declines_and_three_d_secure() -> None:
    fake = FakeStripe()
    gw = gateway(fake)
    declined = gw.authorize(
        Money.of("1.00", "USD"), Card("4000000000009995", 1, 2030), idempotency_key="d"
    )
    assert isinstance(declined, PaymentResult)
    assert declined.decline_code is DeclineCode.INSUFFICIENT_FUNDS
    assert declined.provider_code == "insufficient_funds"
    action = gw.purchase(
        Money.of("1.00", "USD"), Card("4000002500003155", 1, 2030), idempotency_key="a"
    )
    assert isinstance(action, ActionRequired)
    assert action.redirect_url == f"https://hooks.invalid/3ds/{action.reference}"
    assert isinstance(gw.complete_action(action.reference, idempotency_key="c0"), ActionRequired)
    fake.authenticate(action.reference, True)
    done = gw.complete_action(action.reference, idempotency_key="c1")
    assert done.status is PaymentState.CAPTURED
    assert gw.verify(VISA, Money.of("1", "USD").currency, idempotency_key="v").approved
    bad = gw.verify(
        Card("4000000000000002", 1, 2030), Money.of("1", "USD").currency, idempotency_key="v2"
    )
    assert bad.decline_code is DeclineCode.CARD_DECLINED


def respond(status: int, error: dict[str, object] | None = None, **headers: str) -> object:
    def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status, headers, json.dumps({"error": error or {}}).encode())

    return handler


@pytest.mark.parametrize(
    ("status", "error", "headers", "raised"),
    [
        (
            400,
            {"type": "invalid_request_error", "message": "Missing amount"},
            {},
            InvalidInputError,
        ),
        (400, {"type": "idempotency_error", "message": "other params"}, {}, ConflictError),
        (401, {}, {}, ConfigurationError),
        (404, {"message": "No such payment_intent"}, {}, NotFoundError),
        (409, {}, {"Retry-After": "2"}, OperationInFlightError),
        (429, {}, {"Retry-After": "3"}, RateLimitedError),
        (500, {}, {}, OutcomeUnknownError),
        (503, {}, {}, OutcomeUnknownError),
    ],
)
def test_statuses_map_to_typed_errors(
    status: int, error: dict[str, object], headers: dict[str, str], raised: type
) -> None:
    with pytest.raises(raised) as info:
        gateway(respond(status, error, **headers)).capture(
            "pi_1", Money.of("1.00", "USD"), idempotency_key="k"
        )
    if status == 429:
        assert info.value.retry_after_s == 3.0


def test_a_non_json_success_is_an_unknown_outcome() -> None:
    gw = gateway(lambda request: HttpResponse(200, {}, b"<html>"))
    with pytest.raises(OutcomeUnknownError):
        gw.void("pi_1", idempotency_key="k")


def test_an_api_key_is_required() -> None:
    with pytest.raises(ConfigurationError):
        StripeGateway("")
