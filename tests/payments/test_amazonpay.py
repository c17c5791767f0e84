"""AmazonPayGateway against the loopback imitation of Amazon Pay (tests/payments/fake_amazonpay.py).

Every request travels over real HTTP on 127.0.0.1 and is checked there: its
path and headers, its idempotency key, and its signature against the
merchant's public key. The flows run through PaymentService, as a shop runs them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from commercekit.errors import (
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    UnavailableError,
)
from commercekit.money import Money
from commercekit.payments import (
    ActionRequired,
    AmazonPayConfig,
    AmazonPayGateway,
    AmazonPaySigner,
    Card,
    DeclineCode,
    HttpRequest,
    HttpResponse,
    InMemoryIdempotencyStore,
    MockTransport,
    Operation,
    PaymentResult,
    PaymentService,
    PaymentState,
    ProviderToken,
)
from commercekit.payments._amazonpay._wire import amazon_pay_idempotency_key
from tests.payments.fake_amazonpay import FakeAmazonPay, merchant_key, serve

KEY_ID = "AGPTYXGL5VH6PZ2IHGS4M4GN"
STORE = "amzn1.application-oa2-client.8b5e45312b5248b69eeaStoreId"


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def config_for(base_url: str, **kw: object) -> AmazonPayConfig:
    """A config whose key is the key object (loading PEM text is tested once, below)."""
    return AmazonPayConfig(KEY_ID, merchant_key(), store_id=STORE, endpoint=base_url, **kw)  # type: ignore[arg-type]


@pytest.fixture
def fake() -> Iterator[tuple[FakeAmazonPay, AmazonPayGateway]]:
    amazon = FakeAmazonPay(merchant_key().public_key(), public_key_id=KEY_ID)
    with serve(amazon) as url:
        gateway = AmazonPayGateway(config_for(url), return_url="https://shop.test/amazon/done")
        yield amazon, gateway
    assert amazon.rejected == []


def test_redirect_flow_authorize_capture_partial_and_refund_twice(
    fake: tuple[FakeAmazonPay, AmazonPayGateway],
) -> None:
    amazon, gateway = fake
    service = PaymentService(gateway, InMemoryIdempotencyStore())
    session = amazon.buyer_starts()
    action = service.authorize("order-1", Money.of("120.00", "USD"), ProviderToken(session))
    assert isinstance(action, ActionRequired)
    assert action.reference == session
    assert action.redirect_url is not None
    assert session in action.redirect_url
    assert service.payment("order-1").state is PaymentState.REQUIRES_ACTION
    with pytest.raises(InvalidStateError, match="not finished"):
        service.complete_action("order-1")  # the buyer is still at Amazon
    amazon.buyer_pays(session)
    done = service.complete_action("order-1")
    assert isinstance(done, PaymentResult)
    assert done.approved
    assert done.status is PaymentState.AUTHORIZED
    charge_id = done.reference
    assert charge_id == amazon.sessions[session]["chargeId"]
    assert done.operation_reference == amazon.sessions[session]["chargePermissionId"]
    captured = service.capture("order-1", Money.of("100.00", "USD"))
    assert captured.approved
    assert captured.amount == Money.of("100.00", "USD")
    assert amazon.books(charge_id) == (12000, 10000, 0)
    first = service.refund("order-1", Money.of("30.00", "USD"))
    second = service.refund("order-1", Money.of("70.00", "USD"))
    assert first.operation_reference != second.operation_reference
    assert amazon.books(charge_id) == (12000, 10000, 10000)
    assert service.payment("order-1").state is PaymentState.REFUNDED
    with pytest.raises(InvalidStateError):
        service.refund("order-1", Money.of("1.00", "USD"))
    refund = gateway.get_refund(str(first.operation_reference))
    assert refund["statusDetails"]["state"] == "Refunded"
    permission = gateway.get_charge_permission(str(done.operation_reference))
    assert permission["statusDetails"]["state"] == "Chargeable"


def test_purchase_is_captured_when_the_buyer_pays(
    fake: tuple[FakeAmazonPay, AmazonPayGateway],
) -> None:
    amazon, gateway = fake
    service = PaymentService(gateway, InMemoryIdempotencyStore())
    session = amazon.buyer_starts()
    service.purchase("o-2", Money.of("12.00", "USD"), ProviderToken(session))
    amazon.buyer_pays(session)
    result = service.complete_action("o-2")
    assert result.status is PaymentState.CAPTURED
    assert amazon.books(result.reference) == (1200, 1200, 0)
    with pytest.raises(InvalidInputError, match="EUR"):  # region us takes USD only
        service.purchase("o-2b", Money.of("12.00", "EUR"), ProviderToken(session))
    assert service.complete_action("o-2") == result  # asked again: the same answer
    refund = service.refund("o-2")
    assert refund.approved
    assert amazon.books(result.reference) == (1200, 1200, 1200)


@pytest.mark.parametrize(
    ("scenario", "success", "code"),
    [
        ("ok", False, DeclineCode.AUTHENTICATION_FAILED),
        ("declined", True, DeclineCode.CARD_DECLINED),
    ],
)
def test_a_buyer_who_cancels_or_is_declined_ends_declined(
    fake: tuple[FakeAmazonPay, AmazonPayGateway], scenario: str, success: bool, code: DeclineCode
) -> None:
    amazon, gateway = fake
    service = PaymentService(gateway, InMemoryIdempotencyStore())
    session = amazon.buyer_starts(scenario)
    service.authorize("o-3", Money.of("5.00", "USD"), ProviderToken(session))
    amazon.buyer_pays(session, success)
    result = service.complete_action("o-3")
    assert not result.approved
    assert isinstance(result, PaymentResult)
    assert result.decline_code is code
    assert service.payment("o-3").state is PaymentState.FAILED
    assert amazon.charges == {}


def test_void_releases_and_a_second_void_is_refused_as_a_state_error(
    fake: tuple[FakeAmazonPay, AmazonPayGateway],
) -> None:
    amazon, gateway = fake
    service = PaymentService(gateway, InMemoryIdempotencyStore())
    session = amazon.buyer_starts()
    service.authorize("o-4", Money.of("10.00", "USD"), ProviderToken(session))
    amazon.buyer_pays(session)
    charge_id = service.complete_action("o-4").reference
    voided = service.void("o-4")
    assert voided.status is PaymentState.VOIDED
    assert voided.amount == Money.of("10.00", "USD")
    assert amazon.charges[charge_id]["statusDetails"]["state"] == "Canceled"
    with pytest.raises(InvalidStateError, match="InvalidChargeStatus"):
        gateway.void(charge_id, idempotency_key="again")


def test_amazon_refusals_become_declines_or_state_errors(
    fake: tuple[FakeAmazonPay, AmazonPayGateway],
) -> None:
    amazon, gateway = fake
    charge_id = _authorized(amazon, gateway, "20.00")
    too_much = gateway.capture(charge_id, Money.of("23.01", "USD"), idempotency_key="cap-big")
    assert too_much.decline_code is DeclineCode.INVALID_AMOUNT
    assert too_much.provider_code == "TransactionAmountExceeded"
    over = gateway.capture(charge_id, Money.of("23.00", "USD"), idempotency_key="cap-15pc")
    assert over.approved  # Amazon takes up to 15% more than was authorized
    with pytest.raises(InvalidStateError, match="InvalidChargeStatus"):
        gateway.capture(charge_id, Money.of("1.00", "USD"), idempotency_key="cap-again")
    refused = gateway.refund(charge_id, Money.of("23.01", "USD"), idempotency_key="ref-big")
    assert refused.decline_code is DeclineCode.INVALID_AMOUNT
    with pytest.raises(NotFoundError):
        gateway.get_charge("S01-0000000-0000000-C000000")


def test_an_idempotency_key_replays_and_refuses_another_request(
    fake: tuple[FakeAmazonPay, AmazonPayGateway],
) -> None:
    amazon, gateway = fake
    charge_id = _authorized(amazon, gateway, "50.00")
    gateway.capture(charge_id, Money.of("50.00", "USD"), idempotency_key="c1")
    one = gateway.refund(charge_id, Money.of("5.00", "USD"), idempotency_key="pay-9:ref0")
    two = gateway.refund(charge_id, Money.of("5.00", "USD"), idempotency_key="pay-9:ref0")
    assert one == two
    assert amazon.books(charge_id)[2] == 500
    with pytest.raises(ConflictError):
        gateway.refund(charge_id, Money.of("6.00", "USD"), idempotency_key="pay-9:ref0")
    long_key = "order-" + "é" * 100
    derived = amazon_pay_idempotency_key(long_key)
    assert derived == amazon_pay_idempotency_key(long_key)
    assert len(derived) <= 32
    assert amazon_pay_idempotency_key("abc_DEF-123") == "abc_DEF-123"
    gateway.refund(charge_id, Money.of("1.00", "USD"), idempotency_key=long_key)
    sent = [h for (_, _, h, _) in amazon.requests if h.get("x-amz-pay-idempotency-key")]
    assert sent[-1]["x-amz-pay-idempotency-key"] == derived


def test_throttling_server_errors_and_refused_keys_map_to_their_classes(
    fake: tuple[FakeAmazonPay, AmazonPayGateway],
) -> None:
    amazon, gateway = fake
    charge_id = _authorized(amazon, gateway, "8.00")
    amazon.fail_next(429, "TooManyRequests", **{"Retry-After": "2"})
    with pytest.raises(RateLimitedError) as throttled:
        gateway.capture(charge_id, Money.of("8.00", "USD"), idempotency_key="k1")
    assert throttled.value.retry_after_s == 2.0
    amazon.fail_next(500, "InternalServerError")
    with pytest.raises(OutcomeUnknownError):
        gateway.capture(charge_id, Money.of("8.00", "USD"), idempotency_key="k1")
    amazon.fail_next(503, "ServiceUnavailable")
    with pytest.raises(UnavailableError):
        gateway.get_charge(charge_id)  # a read changes nothing: safe to retry
    amazon.fail_next(400, "InvalidParameterValue")
    with pytest.raises(InvalidInputError):
        gateway.capture(charge_id, Money.of("8.00", "USD"), idempotency_key="k1")
    assert gateway.capture(charge_id, Money.of("8.00", "USD"), idempotency_key="k1").approved


def test_a_wrong_key_is_refused_by_the_server_and_named_a_configuration_error() -> None:
    amazon = FakeAmazonPay(merchant_key().public_key(), public_key_id=KEY_ID)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with serve(amazon) as url:
        gateway = AmazonPayGateway(
            AmazonPayConfig(KEY_ID, _pem(other), store_id=STORE, endpoint=url)
        )
        with pytest.raises(ConfigurationError) as caught:
            gateway.get_checkout_session(amazon.buyer_starts())
    assert amazon.rejected == ["signature does not verify"]
    assert "PRIVATE" not in str(caught.value)


def test_create_checkout_session_then_charge_a_charge_permission_again(
    fake: tuple[FakeAmazonPay, AmazonPayGateway],
) -> None:
    amazon, gateway = fake
    created = gateway.create_checkout_session("https://shop.test/review", idempotency_key="cart-77")
    assert created.state == "Open"
    assert created.redirect_url is None
    again = gateway.create_checkout_session("https://shop.test/review", idempotency_key="cart-77")
    assert again.id == created.id
    updated = gateway.update_checkout_session(
        created.id, Money.of("9.00", "USD"), result_return_url="https://s.test/r", capture=False
    )
    assert updated.redirect_url
    assert updated.amount == Money.of("9.00", "USD")
    amazon.buyer_pays(created.id)
    done = gateway.complete_action(created.id, idempotency_key="x")
    assert done.operation_reference is not None
    later = gateway.create_charge(
        done.operation_reference, Money.of("4.00", "USD"), capture=True, idempotency_key="ship-2"
    )
    assert later.approved
    assert later.status is PaymentState.CAPTURED
    assert later.operation is Operation.PURCHASE
    payload, signature = gateway.button_payload("https://shop.test/review")
    assert STORE in payload
    assert signature
    assert gateway.get_checkout_session(created.id).state == "Completed"


def test_cards_and_card_checks_are_refused() -> None:
    gateway = AmazonPayGateway(
        AmazonPayConfig(KEY_ID, merchant_key(), store_id=STORE),
        transport=MockTransport(_unreachable),
        return_url="https://shop.test/done",
    )
    card = Card("4242424242424242", 12, 2031, cvv="123")
    with pytest.raises(InvalidInputError, match="ProviderToken"):
        gateway.authorize(Money.of("1.00", "USD"), card, idempotency_key="k")
    with pytest.raises(InvalidStateError):
        gateway.verify(card, Money.of("1.00", "USD").currency, idempotency_key="k")
    with pytest.raises(InvalidInputError):
        gateway.get_charge("../../etc/passwd")


def _unreachable(request: HttpRequest) -> HttpResponse:
    raise AssertionError("nothing should be sent")


@pytest.mark.parametrize(
    ("region", "sandbox", "key_id", "url", "region_header"),
    [
        ("us", True, "AK1", "https://pay-api.amazon.com/sandbox/v2/charges/C1", "na"),
        ("eu", False, "AK1", "https://pay-api.amazon.eu/live/v2/charges/C1", "eu"),
        ("jp", True, "SANDBOX-AK1", "https://pay-api.amazon.jp/v2/charges/C1", "jp"),
        ("us", False, "LIVE-AK1", "https://pay-api.amazon.com/v2/charges/C1", "na"),
    ],
)
def test_regions_and_environments_pick_the_host_and_path(
    region: str, sandbox: bool, key_id: str, url: str, region_header: str
) -> None:
    seen: list[HttpRequest] = []

    def answer(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse(200, {}, b'{"chargeId": "C1"}')

    config = AmazonPayConfig(key_id, merchant_key(), store_id=STORE, region=region, sandbox=sandbox)
    AmazonPayGateway(config, transport=MockTransport(answer)).get_charge("C1")
    assert seen[0].url == url
    assert seen[0].headers["x-amz-pay-region"] == region_header
    assert seen[0].headers["x-amz-pay-host"] == url.split("/")[2]


def test_configuration_is_checked_and_the_private_key_never_shows() -> None:
    pem = _pem(merchant_key())
    with pytest.raises(ConfigurationError, match="sandbox"):
        AmazonPayConfig("SANDBOX-AK1", pem, store_id=STORE, sandbox=False)
    with pytest.raises(ConfigurationError, match="region"):
        AmazonPayConfig("AK1", pem, store_id=STORE, region="de-north")
    broken = pem.replace("A", "B", 40)
    with pytest.raises(ConfigurationError) as caught:
        AmazonPaySigner("AK1", broken)
    body = pem.splitlines()[5]
    assert body not in str(caught.value)
    assert body not in repr(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    config = AmazonPayConfig("AK1", pem, store_id=STORE)
    gateway = AmazonPayGateway(config)
    for shown in (repr(config), repr(gateway), repr(AmazonPaySigner("AK1", pem)), str(config)):
        assert "PRIVATE" not in shown
        assert body not in shown


def _authorized(amazon: FakeAmazonPay, gateway: AmazonPayGateway, amount: str) -> str:
    session = amazon.buyer_starts()
    gateway.authorize(Money.of(amount, "USD"), ProviderToken(session), idempotency_key="a")
    amazon.buyer_pays(session)
    return gateway.complete_action(session, idempotency_key="b").reference


HOSTILE = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"chargeId": ["x"], "statusDetails": "Captured"}',
    b'{"chargeId": "C1", "statusDetails": {"state": ["Captured"]}, "chargeAmount": 7}',
    b'{"chargeId": "C1", "statusDetails": {"state": "Authorized"}, '
    b'"chargeAmount": {"amount": "1e400", "currencyCode": "USD"}}',
    b'{"chargeId": "C1", "statusDetails": {"state": "Authorized"}, '
    b'"chargeAmount": {"amount": "NaN", "currencyCode": "XQZ"}}',
    b'{"chargeId": "C1", "statusDetails": {"state": "Captured"}, '
    b'"captureAmount": {"amount": "\xd9\xa1", "currencyCode": "USD"}}',
    b'{"chargeId": "C1\\n4242424242424242", "statusDetails": {"state": "Weird 4242424242424242"}}',
    b'{"checkoutSessionId": {"a": 1}, "statusDetails": {"state": "Open"}}',
    b'{"reasonCode": "\\ud800", "message": "4242 4242 4242 4242"}',
    b"\xff\xfe not json",
]


@pytest.mark.parametrize("status", [200, 422, 503])
@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_answers_raise_only_our_errors(status: int, body: bytes) -> None:
    from commercekit.errors import CommerceKitError

    gateway = AmazonPayGateway(
        AmazonPayConfig(KEY_ID, merchant_key(), store_id=STORE),
        transport=MockTransport(lambda request: HttpResponse(status, {}, body)),
        return_url="https://shop.test/done",
    )
    calls = [
        lambda: gateway.get_charge("C1"),
        lambda: gateway.capture("C1", Money.of("1.00", "USD"), idempotency_key="k"),
        lambda: gateway.refund("C1", Money.of("1.00", "USD"), idempotency_key="k"),
        lambda: gateway.void("C1", idempotency_key="k"),
        lambda: gateway.complete_action("S1", idempotency_key="k"),
        lambda: gateway.authorize(
            Money.of("1.00", "USD"), ProviderToken("S1"), idempotency_key="k"
        ),
        lambda: gateway.lookup(Operation.CAPTURE, idempotency_key="k", reference="C1"),
    ]
    for call in calls:
        shown = ""
        try:
            result = call()
        except CommerceKitError as exc:
            shown = f"{exc} {exc!r}"
        else:
            if not isinstance(result, dict):  # a get_* answer is Amazon's own object
                shown = repr(result)
        assert "4242" not in shown


def test_the_imitation_refuses_bodies_the_api_reference_refuses(
    fake: tuple[FakeAmazonPay, AmazonPayGateway],
) -> None:
    amazon, gateway = fake
    client = gateway._client
    usd = {"amount": "1.00", "currencyCode": "USD"}
    session = f"checkoutSessions/{amazon.buyer_starts()}"
    bad = [
        ("POST", "refunds", {"chargeId": "C1", "refundAmount": {**usd, "amount": 5}}),
        ("POST", "refunds", {"chargeId": "C1", "refundAmount": {**usd, "amount": "1,00"}}),
        ("POST", "refunds", {"chargeId": "C1"}),
        ("POST", "charges/C1/capture", {"captureAmount": usd, "x": 1}),
        ("PATCH", session, {"paymentDetails": {"paymentIntent": "Steal"}}),
        ("POST", "checkoutSessions", {"storeId": STORE}),
    ]
    for i, (method, fragment, body) in enumerate(bad):
        with pytest.raises(InvalidInputError):
            client.call(method, fragment, body=body, idempotency_key=f"bad-{i}")
    assert amazon.charges == {}
    assert amazon.refunds == {}


def test_the_private_key_never_reaches_a_log(
    fake: tuple[FakeAmazonPay, AmazonPayGateway], caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    amazon, gateway = fake
    caplog.set_level(logging.DEBUG)
    service = PaymentService(gateway, InMemoryIdempotencyStore())
    session = amazon.buyer_starts()
    service.authorize("log-1", Money.of("3.00", "USD"), ProviderToken(session))
    amazon.buyer_pays(session)
    service.complete_action("log-1")
    amazon.fail_next(500, "InternalServerError")
    service.capture("log-1")  # a lost answer is logged, looked up and recorded
    pem_lines = [line for line in _pem(merchant_key()).splitlines() if "-----" not in line]
    logged = caplog.text + " ".join(repr(r.args) for r in caplog.records)
    assert caplog.records  # something was logged
    assert not [line for line in pem_lines if line in logged]


def test_lookup_reads_the_session_or_charge_and_never_invents(
    fake: tuple[FakeAmazonPay, AmazonPayGateway],
) -> None:
    amazon, gateway = fake
    session = amazon.buyer_starts()
    gateway.authorize(Money.of("9.00", "USD"), ProviderToken(session), idempotency_key="a")
    assert gateway.lookup(Operation.COMPLETE_ACTION, idempotency_key="c", reference=session) is None
    assert gateway.lookup(Operation.AUTHORIZE, idempotency_key="a", reference=None) is None
    amazon.buyer_pays(session)
    done = gateway.complete_action(session, idempotency_key="c")
    found = gateway.lookup(Operation.COMPLETE_ACTION, idempotency_key="c", reference=session)
    assert found == done
    charge = done.reference
    assert gateway.lookup(Operation.CAPTURE, idempotency_key="k", reference=charge) is None
    assert gateway.lookup(Operation.VOID, idempotency_key="v", reference=charge) is None
    captured = gateway.capture(charge, Money.of("4.00", "USD"), idempotency_key="k")
    assert gateway.lookup(Operation.CAPTURE, idempotency_key="k", reference=charge) == captured
    assert gateway.lookup(Operation.REFUND, idempotency_key="r", reference=charge) is None
    canceled = amazon.buyer_starts()
    gateway.authorize(Money.of("2.00", "USD"), ProviderToken(canceled), idempotency_key="a2")
    amazon.buyer_pays(canceled, success=False)
    declined = gateway.lookup(Operation.COMPLETE_ACTION, idempotency_key="c2", reference=canceled)
    assert declined is not None
    assert declined.decline_code is DeclineCode.AUTHENTICATION_FAILED


@pytest.mark.parametrize(
    ("state", "operation", "expected"),
    [
        ("AuthorizationInitiated", "complete", OutcomeUnknownError),
        ("CaptureInitiated", "capture", PaymentState.CAPTURED),
        ("Authorized", "capture", OutcomeUnknownError),  # a capture that did not capture
        ("Declined", "capture", PaymentState.FAILED),
    ],
)
def test_charge_states_map_to_results_or_unknown_outcomes(
    state: str, operation: str, expected: object
) -> None:
    charge = {
        "chargeId": "S01-1-1-C1",
        "chargePermissionId": "S01-1-1",
        "chargeAmount": {"amount": "5.00", "currencyCode": "USD"},
        "captureAmount": {"amount": "5.00", "currencyCode": "USD"},
        "statusDetails": {"state": state, "reasonCode": "HardDeclined"},
    }
    session = {
        "checkoutSessionId": "S1",
        "statusDetails": {"state": "Completed"},
        "chargeId": "S01-1-1-C1",
        "paymentDetails": {"chargeAmount": charge["chargeAmount"]},
    }

    def answer(request: HttpRequest) -> HttpResponse:
        body = session if "checkoutSessions" in request.url else charge
        return HttpResponse(200, {}, json.dumps(body).encode())

    gateway = AmazonPayGateway(
        AmazonPayConfig(KEY_ID, merchant_key(), store_id=STORE), transport=MockTransport(answer)
    )

    def run() -> PaymentResult:
        if operation == "complete":
            result = gateway.complete_action("S1", idempotency_key="k")
            assert isinstance(result, PaymentResult)
            return result
        return gateway.capture("S01-1-1-C1", Money.of("5.00", "USD"), idempotency_key="k")

    if isinstance(expected, PaymentState):
        assert run().status is expected
    else:
        with pytest.raises(OutcomeUnknownError):
            run()


def test_the_config_keeps_a_key_object_not_the_pem_text() -> None:
    import attrs

    pem = _pem(merchant_key())
    config = AmazonPayConfig("AK1", pem, store_id=STORE)
    body = pem.splitlines()[3]
    assert body not in repr(attrs.asdict(config))
    assert isinstance(config.private_key, rsa.RSAPrivateKey)
    with pytest.raises(ConfigurationError):
        AmazonPayConfig("AK1", "not a key", store_id=STORE)
