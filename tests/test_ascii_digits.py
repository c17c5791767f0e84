"""Numbers read from outside text take ASCII digits only, and nested JSON never escapes.

``str.isdigit()`` is true for superscripts and other scripts' digits, on which
``int()`` then raises a foreign ``ValueError``: each reader below once did that.
A provider answer nested past the interpreter's stack raised ``RecursionError``.
"""

from __future__ import annotations

import pytest

from commercekit.balancer._checking._probes import host_port
from commercekit.cdn._origins._http import _length
from commercekit.cdn._policy._cache_control import parse_cache_control
from commercekit.errors import CommerceKitError, ConfigurationError
from commercekit.money import Money
from commercekit.payments import (
    AdyenGateway,
    Card,
    HttpRequest,
    HttpResponse,
    MockTransport,
    StripeGateway,
)
from tests.fuzz.hostile import deeply_nested_json

ODD_DIGITS = ["²", "١٢", "٣", "\U0001d7d7", "⑤"]  # the fourth: MATHEMATICAL BOLD DIGIT NINE


@pytest.mark.parametrize("digits", ODD_DIGITS)
def test_a_probe_address_with_odd_digits_is_a_configuration_error(digits: str) -> None:
    with pytest.raises(ConfigurationError):
        host_port(f"shop.test:{digits}")


@pytest.mark.parametrize("digits", ODD_DIGITS)
def test_an_origin_content_length_with_odd_digits_is_no_length(digits: str) -> None:
    assert _length(digits) is None
    assert _length("123") == 123


@pytest.mark.parametrize("digits", ODD_DIGITS)
def test_a_max_age_with_odd_digits_is_malformed(digits: str) -> None:
    assert parse_cache_control(f"max-age={digits}").malformed
    assert not parse_cache_control("max-age=60").malformed


def nested(request: HttpRequest) -> HttpResponse:
    return HttpResponse(500, {"Content-Type": "application/json"}, deeply_nested_json())


def test_stripe_and_adyen_answers_nested_past_the_stack_raise_our_errors() -> None:
    card = Card("4242424242424242", 12, 2031, cvv="123")
    stripe = StripeGateway("sk_test_x", transport=MockTransport(nested), base_url="https://s.test")
    with pytest.raises(CommerceKitError):
        stripe.authorize(Money.of("5.00", "USD"), card, idempotency_key="k1")
    adyen = AdyenGateway(
        "AQE_key",
        "Shop",
        return_url="https://shop.test/back",
        transport=MockTransport(nested),
        base_url="https://a.test",
    )
    with pytest.raises(CommerceKitError):
        adyen.purchase(Money.of("5.00", "EUR"), card, idempotency_key="k1")
