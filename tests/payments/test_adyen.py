"""AdyenGateway on the wire: JSON bodies, headers, exponents, resultCodes, refusals, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from commercekit.errors import (
    ConfigurationError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    OutcomeUnknownError,
)
from commercekit.money import Money, currency
from commercekit.payments import (
    ADYEN_REFUSAL_CODES,
    ActionRequired,
    AdyenGateway,
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
)
from tests.payments.fake_adyen import FakeAdyen

VISA = Card("4242424242424242", 3, 2031, cvv="737", holder="Ada Lovelace")
BASE = "https://checkout-test.adyen.test/v71"


def gateway(handler: Callable[[HttpRequest], HttpResponse], **kw: Any) -> AdyenGateway:
    return AdyenGateway(
        "AQE_test_key",
        "ShopECOM",
        return_url="https://shop.test/return",
        transport=MockTransport(handler),
        base_url=BASE,
        **kw,
    )


def sent(request: HttpRequest) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(request.body)
    return body


def test_the_wire_format_of_an_authorization() -> None:
    fake = FakeAdyen()
    result = gateway(fake).authorize(
        Money.of("10.00", "EUR"), VISA, idempotency_key="order-1:authorize"
    )
    assert isinstance(result, PaymentResult)
    assert result.status is PaymentState.AUTHORIZED
    assert result.reference.isdigit()  # the pspReference
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.url == f"{BASE}/payments"
    assert request.headers["X-API-Key"] == "AQE_test_key"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == "order-1:authorize"
    assert "4242424242424242" not in repr(request)
    assert sent(request) == {
        "merchantAccount": "ShopECOM",
        "amount": {"currency": "EUR", "value": 1000},
        "reference": "auth.order-1:authorize",
        "paymentMethod": {
            "type": "scheme",
            "number": "4242424242424242",
            "expiryMonth": "03",
            "expiryYear": "2031",
            "cvc": "737",
            "holderName": "Ada Lovelace",
        },
        "returnUrl": "https://shop.test/return",
        "additionalData": {"manualCapture": "true"},
    }


def test_purchase_verify_and_stored_methods_on_the_wire() -> None:
    fake = FakeAdyen()
    gw = gateway(fake)
    done = gw.purchase(
        Money.of("5.00", "USD"), VISA, idempotency_key="p", return_url="https://x.test/r"
    )
    assert done.status is PaymentState.CAPTURED
    body = sent(fake.requests[-1])
    assert body["captureDelayHours"] == 0
    assert "additionalData" not in body
    assert body["returnUrl"] == "https://x.test/r"
    check = gw.verify(VISA, currency("USD"), idempotency_key="v")
    assert (check.approved, check.status) == (True, PaymentState.VOIDED)
    assert sent(fake.requests[-1])["amount"] == {"currency": "USD", "value": 0}
    assert sent(fake.requests[-1])["reference"] == "check.v"
    gw.authorize(Money.of("1.00", "USD"), ProviderToken("8415698462516992"), idempotency_key="t")
    body = sent(fake.requests[-1])
    assert body["paymentMethod"] == {"type": "scheme", "storedPaymentMethodId": "8415698462516992"}
    assert body["shopperInteraction"] == "ContAuth"
    assert body["recurringProcessingModel"] == "CardOnFile"


@pytest.mark.parametrize(
    ("amount", "code", "value"),
    [
        ("5", "ISK", 500),  # ISO: no decimals; Adyen: two
        ("1000", "CLP", 100000),  # ISO: no decimals; Adyen: two
        ("10000", "IDR", 10000),  # ISO: two decimals; Adyen: none
        ("250", "CVE", 250),  # ISO: two decimals; Adyen: none
        ("500", "JPY", 500),
        ("1.234", "KWD", 1234),
        ("12.34", "EUR", 1234),
    ],
)
def test_adyen_currency_exponents(amount: str, code: str, value: int) -> None:
    fake = FakeAdyen()
    result = gateway(fake).purchase(Money.of(amount, code), VISA, idempotency_key=code)
    assert sent(fake.requests[-1])["amount"] == {"currency": code, "value": value}
    assert result.amount == Money.of(amount, code)  # read back the same way


def test_an_amount_adyen_cannot_write_is_refused_before_sending() -> None:
    fake = FakeAdyen()
    with pytest.raises(InvalidInputError, match="more decimals"):
        gateway(fake).purchase(Money.of("10.50", "IDR"), VISA, idempotency_key="idr")
    assert fake.requests == []


def test_a_payment_through_the_service() -> None:
    fake = FakeAdyen()
    service = PaymentService(gateway(fake), InMemoryIdempotencyStore(), sleep=lambda s: None)
    service.authorize("o1", Money.of("10.00", "EUR"), VISA)
    reference = service.payment("o1").reference or ""
    capture = service.capture("o1", Money.of("6.00", "EUR"))
    assert capture.status is PaymentState.PARTIALLY_CAPTURED
    assert fake.requests[-1].url == f"{BASE}/payments/{reference}/captures"
    assert sent(fake.requests[-1]) == {
        "merchantAccount": "ShopECOM",
        "reference": "op.o1:capture:600:EUR",
        "amount": {"currency": "EUR", "value": 600},
    }
    assert capture.operation_reference not in (None, reference)
    with pytest.raises(InvalidStateError, match="one capture"):
        service.capture("o1", Money.of("1.00", "EUR"))  # not enabled on the account
    service.refund("o1", Money.of("2.00", "EUR"))
    assert fake.requests[-1].url.endswith(f"/payments/{reference}/refunds")
    assert service.refund("o1").status is PaymentState.REFUNDED
    assert fake.books(reference) == (1000, 600, 600)
    service.authorize("o2", Money.of("3.00", "EUR"), VISA)
    voided = service.void("o2")
    assert voided.status is PaymentState.VOIDED
    assert voided.amount == Money.of("3.00", "EUR")  # Adyen's /cancels names none
    assert fake.requests[-1].url.endswith("/cancels")
    assert "amount" not in sent(fake.requests[-1])


def test_multiple_captures_where_the_account_allows_them() -> None:
    fake = FakeAdyen()
    gw = gateway(fake, multiple_captures=True)
    assert gw.capabilities.multiple_captures


def test_three_d_secure_through_payments_details() -> None:
    fake = FakeAdyen()
    gw = gateway(fake)
    service = PaymentService(gw, InMemoryIdempotencyStore(), sleep=lambda s: None)
    card = Card("4000000000003220", 1, 2030)
    action = service.purchase("o3", Money.of("7.00", "EUR"), card)
    assert isinstance(action, ActionRequired)
    assert action.action_type == "redirect"
    assert action.redirect_url == f"https://checkoutshopper-test.adyen.test/3ds/{action.reference}"
    with pytest.raises(InvalidStateError, match="shopper_returned"):
        service.complete_action("o3")
    gw.shopper_returned(
        action.reference, {"redirectResult": fake.authenticate(action.reference, True)}
    )
    done = service.complete_action("o3")
    assert done.status is PaymentState.CAPTURED  # a purchase: captured once authorised
    request = fake.requests[-1]
    assert request.url == f"{BASE}/payments/details"
    assert sent(request) == {"details": {"redirectResult": f"rr-{action.reference}-True"}}
    assert service.payment("o3").captured_minor == 700


def test_three_d_secure_refused_and_a_details_function() -> None:
    fake = FakeAdyen()
    returned: dict[str, dict[str, str]] = {}
    gw = gateway(fake, details=returned.get)
    action = gw.authorize(
        Money.of("7.00", "EUR"), Card("4000002500003155", 1, 2030), idempotency_key="a"
    )
    assert isinstance(action, ActionRequired)
    returned[action.reference] = {"redirectResult": fake.authenticate(action.reference, False)}
    failed = gw.complete_action(action.reference, idempotency_key="c")
    assert isinstance(failed, PaymentResult)
    assert failed.decline_code is DeclineCode.AUTHENTICATION_FAILED
    assert failed.provider_code == "3D Not Authenticated"


def respond(status: int, body: object, **headers: str) -> Callable[[HttpRequest], HttpResponse]:
    def handler(request: HttpRequest) -> HttpResponse:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return HttpResponse(status, headers, raw)

    return handler


def answer(**fields: object) -> dict[str, object]:
    return {"pspReference": "8800000000000001", "merchantReference": "auth.k"} | fields


@pytest.mark.parametrize(
    ("fields", "code", "raw"),
    [
        (
            {"refusalReasonCode": "12", "refusalReason": "Not enough balance"},
            "insufficient_funds",
            "Not enough balance",
        ),
        (
            {"refusalReasonCode": "24", "refusalReason": "CVC Declined"},
            "incorrect_cvc",
            "CVC Declined",
        ),
        (
            {"refusalReasonCode": "6", "refusalReason": "Expired Card"},
            "expired_card",
            "Expired Card",
        ),
        (
            {"refusalReasonCode": "5", "refusalReason": "Blocked Card"},
            "pickup_card",
            "Blocked Card",
        ),
        ({"refusalReasonCode": "20", "refusalReason": "FRAUD"}, "fraud_suspected", "FRAUD"),
        ({"refusalReason": "Issuer Unavailable"}, "try_again_later", "Issuer Unavailable"),
        (
            {"refusalReasonCode": "999", "refusalReason": "Something new"},
            "card_declined",
            "Something new",
        ),
        ({}, "card_declined", "Refused"),
    ],
)
def test_refusals_map_onto_the_standard_codes(
    fields: dict[str, object], code: str, raw: str
) -> None:
    gw = gateway(respond(200, answer(resultCode="Refused", **fields)))
    result = gw.authorize(Money.of("1.00", "EUR"), VISA, idempotency_key="k")
    assert isinstance(result, PaymentResult)
    assert (result.outcome.value, result.status) == ("declined", PaymentState.FAILED)
    assert result.decline_code is DeclineCode(code)
    assert result.provider_code == raw


def test_error_and_cancelled_are_declines_too() -> None:
    error = gateway(respond(200, answer(resultCode="Error"))).authorize(
        Money.of("1.00", "EUR"), VISA, idempotency_key="k"
    )
    assert error.decline_code is DeclineCode.PROCESSING_ERROR  # type: ignore[union-attr]
    cancelled = gateway(
        respond(200, answer(resultCode="Cancelled", refusalReasonCode="16"))
    ).authorize(Money.of("1.00", "EUR"), VISA, idempotency_key="k")
    assert cancelled.decline_code is DeclineCode.CARD_DECLINED  # type: ignore[union-attr]
    assert set(ADYEN_REFUSAL_CODES.values()) <= set(DeclineCode)


@pytest.mark.parametrize("code", ["RedirectShopper", "IdentifyShopper", "ChallengeShopper"])
def test_shopper_actions_are_action_required(code: str) -> None:
    action = {"type": "threeDS2", "token": "tok", "paymentMethodType": "scheme"}
    result = gateway(respond(200, answer(resultCode=code, action=action))).authorize(
        Money.of("1.00", "EUR"), VISA, idempotency_key="k"
    )
    assert isinstance(result, ActionRequired)
    assert (result.reference, result.action_type) == ("8800000000000001", "threeDS2")
    assert result.client_secret == "tok"
    assert result.amount == Money.of("1.00", "EUR")


@pytest.mark.parametrize("code", ["Received", "Pending", "PresentToShopper", ""])
def test_results_that_are_not_final_are_unknown_outcomes(code: str) -> None:
    gw = gateway(respond(200, answer(resultCode=code)))
    with pytest.raises(OutcomeUnknownError, match="not known yet"):
        gw.purchase(Money.of("1.00", "EUR"), VISA, idempotency_key="k")


@pytest.mark.parametrize(
    ("status", "body", "headers", "raised"),
    [
        (400, {"status": 400, "errorCode": "702", "message": "Empty input"}, {}, InvalidInputError),
        (
            422,
            {"status": 422, "errorCode": "101", "message": "Invalid card number"},
            {},
            InvalidInputError,
        ),
        (
            422,
            {"status": 422, "errorCode": "704", "message": "in progress"},
            {},
            OperationInFlightError,
        ),
        (401, {"status": 401, "errorCode": "000"}, {}, ConfigurationError),
        (403, {"status": 403, "errorCode": "010"}, {}, ConfigurationError),
        (404, {"status": 404}, {}, NotFoundError),
        (429, {}, {"Retry-After": "3"}, RateLimitedError),
        (500, {"status": 500, "errorCode": "905"}, {}, OutcomeUnknownError),
        (503, b"<html>", {}, OutcomeUnknownError),
        (201, b"<html>", {}, OutcomeUnknownError),
    ],
)
def test_statuses_map_to_typed_errors(
    status: int, body: object, headers: dict[str, str], raised: type[Exception]
) -> None:
    with pytest.raises(raised) as info:
        gateway(respond(status, body, **headers)).capture(
            "8800000000000001", Money.of("1.00", "EUR"), idempotency_key="k"
        )
    if status == 429:
        assert info.value.retry_after_s == 3.0  # type: ignore[attr-defined]
    assert "4242" not in str(info.value)


def test_a_modification_not_received_is_an_unknown_outcome() -> None:
    gw = gateway(respond(201, {"status": "refused", "pspReference": "x"}))
    with pytest.raises(OutcomeUnknownError, match="received"):
        gw.refund("8800000000000001", Money.of("1.00", "EUR"), idempotency_key="k")


def test_long_keys_are_digested_the_same_way_every_time() -> None:
    fake = FakeAdyen()
    gw = gateway(fake)
    key = "order-" + "x" * 100 + ":authorize"
    gw.authorize(Money.of("1.00", "EUR"), VISA, idempotency_key=key)
    gw.authorize(Money.of("1.00", "EUR"), VISA, idempotency_key=key)
    first, second = fake.requests
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert len(first.headers["Idempotency-Key"]) == 64
    assert len(sent(first)["reference"]) <= 80
    assert len(fake.payments) == 1  # the repeated key was answered from Adyen's memory


def test_lookup_finds_nothing_and_the_service_resends_with_the_same_key() -> None:
    fake = FakeAdyen()
    lost = iter([True])

    def flaky(request: HttpRequest) -> HttpResponse:
        response = fake(request)
        if next(lost, False):
            raise OutcomeUnknownError("read timed out after the request was sent")
        return response

    gw = gateway(flaky)
    assert gw.lookup(Operation.AUTHORIZE, idempotency_key="o9:authorize", reference=None) is None
    service = PaymentService(gw, InMemoryIdempotencyStore(), sleep=lambda s: None)
    result = service.authorize("o9", Money.of("4.00", "EUR"), VISA)
    assert result.status is PaymentState.AUTHORIZED
    assert len(fake.requests) == 2
    assert fake.changes["o9:authorize"] == 1  # charged once


def test_configuration_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="API key"):
        AdyenGateway("", "ShopECOM", return_url="https://x.test")
    with pytest.raises(InvalidInputError, match="merchant account"):
        AdyenGateway("key", "", return_url="https://x.test")
    assert "AQE" not in repr(gateway(FakeAdyen()))
