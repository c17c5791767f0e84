"""Provider text is redacted before it reaches a message or a log: card numbers and CVCs out.

The echo tests put a transport in front of the gateways that answers every
request with an error whose text is the request body itself (as a provider
or a proxy that echoes the request does), then look for the card number and
the security code in every message, cause and log record.
"""

from __future__ import annotations

import json
import logging
import traceback
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commercekit.errors import CommerceKitError, InvalidInputError, OutcomeUnknownError
from commercekit.money import Money
from commercekit.payments import (
    AdyenGateway,
    Card,
    HttpRequest,
    HttpResponse,
    InMemoryIdempotencyStore,
    MockTransport,
    PaymentService,
    RetryPolicy,
    StripeGateway,
    redact_provider_text,
)
from commercekit.payments._card import luhn_valid

NUMBER = "4000056655665556"
CVC = "8317"


def texts_of(exc: BaseException) -> list[str]:
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        texts += [str(seen), repr(seen), "".join(traceback.format_exception_only(seen))]
        seen = seen.__cause__ or seen.__context__
    return texts


def assert_clean(texts: list[str]) -> None:
    assert texts
    for text in texts:
        assert NUMBER not in text, text
        assert NUMBER[:12] not in text, text
        assert " ".join(NUMBER[i : i + 4] for i in range(0, 16, 4)) not in text, text
        assert CVC not in text, text


def stripe_echo(status: int):  # type: ignore[no-untyped-def]
    def handler(request: HttpRequest) -> HttpResponse:
        # Stripe's form body, decoded as a proxy's error page would show it.
        echoed = urllib.parse.unquote_plus(request.body.decode())
        body = {"error": {"type": "invalid_request_error", "message": f"bad request: {echoed}"}}
        return HttpResponse(status, {"Content-Type": "application/json"}, json.dumps(body).encode())

    return handler


def adyen_echo(request: HttpRequest) -> HttpResponse:
    body = {"status": 422, "errorCode": "101", "message": request.body.decode(), "errorType": "v"}
    return HttpResponse(422, {"Content-Type": "application/json"}, json.dumps(body).encode())


@pytest.mark.parametrize("status", [400, 500])
def test_stripe_echoing_the_card_leaks_nothing(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = StripeGateway(
        "sk_test_x", transport=MockTransport(stripe_echo(status)), base_url="https://s.test"
    )
    card = Card(NUMBER, 12, 2031, cvv=CVC)
    with pytest.raises(CommerceKitError) as direct:
        gateway.authorize(Money.of("5.00", "USD"), card, idempotency_key="k1")
    service = PaymentService(
        gateway,
        InMemoryIdempotencyStore(),
        sleep=lambda s: None,
        retry=RetryPolicy(attempts=2, max_reconcile_rounds=2),
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(CommerceKitError) as served:
        service.authorize("p1", Money.of("5.00", "USD"), card)
    expected = OutcomeUnknownError if status == 500 else InvalidInputError
    assert isinstance(direct.value, expected)
    assert "[redacted" in str(direct.value)  # the echo got through, redacted
    texts = texts_of(direct.value) + texts_of(served.value)
    texts += [record.getMessage() for record in caplog.records]
    assert_clean(texts)


def test_adyen_422_echoing_the_card_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    gateway = AdyenGateway(
        "AQE_key",
        "Shop",
        return_url="https://shop.test/back",
        transport=MockTransport(adyen_echo),
        base_url="https://a.test",
    )
    card = Card(NUMBER, 12, 2031, cvv=CVC)
    with pytest.raises(InvalidInputError) as direct:
        gateway.purchase(Money.of("5.00", "EUR"), card, idempotency_key="k1")
    assert "[redacted" in str(direct.value)
    service = PaymentService(gateway, InMemoryIdempotencyStore(), sleep=lambda s: None)
    with caplog.at_level(logging.DEBUG), pytest.raises(InvalidInputError) as served:
        service.purchase("p1", Money.of("5.00", "EUR"), card)
    texts = texts_of(direct.value) + texts_of(served.value)
    assert_clean(texts + [record.getMessage() for record in caplog.records])


@pytest.mark.parametrize(
    "text",
    [
        "4000056655665556",
        "4000 0566 5566 5556",
        "4000-0566-5566-5556",
        "4000+0566+5566+5556",
        "4000%200566%205566%205556",
        "card 4000056655665556.",
        "x4000056655665556y",
        "00004000056655665556123",  # held in a longer run
        "ref 5 4000 0566 5566 5556",  # a digit group before it
        "".join(chr(0xFF10 + int(d)) for d in NUMBER),  # fullwidth digits
        "card[number]=4000056655665556&card[cvc]=8317",
        '{"number":"4000056655665556","cvc":"8317"}',
        "{'cvc': '8317'}",
        "payment_method_data[card][cvc]=8317",
        "card%5Bcvc%5D=8317",
        "card%5Bcvc%5D%3D8317",
        "cvv2: 8317",
        "CVC2=8317",
        "security code 8317 is wrong",
        "the security code is 8317",
        '"securityCode":"8317"',
        '\\"cvc\\":\\"8317\\"',
        "Card Verification Value: 8317",
    ],
)
def test_each_form_is_redacted(text: str) -> None:
    out = redact_provider_text(text)
    digits = "".join(str(int(c)) for c in out if c.isdecimal())
    assert NUMBER[:12] not in digits, out
    assert CVC not in out, out


@pytest.mark.parametrize(
    "text",
    [
        "No such payment_intent: 'pi_3MtwBwLkdIwHu7ix28a3tqPa'",
        "cvc_check: pass",
        "amount 1234567890123 is too large",  # 13 digits, not Luhn-valid
        "Invalid integer: 99",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact_provider_text(text) == text


def test_cut_text_ends_cleanly_and_hides_a_split_number() -> None:
    text = "x" * 190 + " 4000 0566 5566 5556 and more text after it" + "y" * 500
    out = redact_provider_text(text)
    assert len(out) <= 200
    assert out.endswith("...")
    assert "4000 0566 5" not in out
    head = "z" * 250 + NUMBER  # the number straddles the read-ahead margin
    assert NUMBER[:7] not in redact_provider_text(head, limit=200)


def test_controls_surrogates_and_odd_types() -> None:
    assert redact_provider_text("a\nb\r\u2028c\ud800") == "a\\x0ab\\x0d\\u2028c\\ud800"
    assert redact_provider_text(None) == "None"
    assert redact_provider_text(10**5000) == "<int>"
    assert redact_provider_text(b"cvc=8317") == "cvc=[redacted]"


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.text(max_size=80),
    suffix=st.text(max_size=80),
    body=st.lists(st.integers(0, 9), min_size=11, max_size=18),
    sep=st.sampled_from(["", " ", "-", "."]),
)
def test_any_luhn_valid_number_is_removed(
    prefix: str, suffix: str, body: list[int], sep: str
) -> None:
    digits = "".join(map(str, body))
    check = next(str(d) for d in range(10) if luhn_valid(digits + str(d)))
    number = digits + check
    grouped = sep.join(number[i : i + 4] for i in range(0, len(number), 4))
    out = redact_provider_text(f"{prefix} {grouped} {suffix}", limit=400)
    assert grouped not in out
    assert number not in out
