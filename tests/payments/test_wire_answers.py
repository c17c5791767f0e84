"""What every provider's wire module reads the same way: Retry-After, and a JSON object body."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from commercekit.errors import OutcomeUnknownError, RateLimitedError
from commercekit.money import Money
from commercekit.payments import (
    AdyenGateway,
    AmazonPayGateway,
    HttpRequest,
    HttpResponse,
    MockTransport,
    StripeGateway,
)
from commercekit.payments._transports._answers import json_object, retry_after_s

from .test_amazonpay import config_for

Respond = Callable[[HttpRequest], HttpResponse]

GATEWAYS: dict[str, Callable[[Respond], Any]] = {
    "stripe": lambda respond: StripeGateway("sk_test_x", transport=MockTransport(respond)),
    "adyen": lambda respond: AdyenGateway(
        "key", "Merchant", return_url="https://shop/r", transport=MockTransport(respond)
    ),
    "amazonpay": lambda respond: AmazonPayGateway(
        config_for("https://pay-api.amazon.com"), transport=MockTransport(respond)
    ),
}
BODY = json.dumps({"reasonCode": "TooManyRequests", "message": "slow down"}).encode()


@pytest.mark.parametrize("provider", sorted(GATEWAYS))
@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("0", 0.0), ("-4", None), ("nan", None), ("inf", None),
     ("1e400", None), ("soon", None), (None, None)],
)  # fmt: skip
def test_retry_after_is_finite_seconds_not_negative_or_none(
    provider: str, header: str | None, expected: float | None
) -> None:
    headers = {"Retry-After": header} if header is not None else {}

    def respond(request: HttpRequest) -> HttpResponse:
        return HttpResponse(429, headers, BODY)

    with pytest.raises(RateLimitedError) as info:
        GATEWAYS[provider](respond).capture("ref-1", Money.of("1.00", "EUR"), idempotency_key="k")
    got = info.value.retry_after_s
    assert got == expected
    assert got is None or math.isfinite(got)


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b'{"a": 1}', {"a": 1}), (b"[1]", None), (b"<html>", None), (b"", None),
     (b"[" * 100_000, None), (b'"text"', None)],
)  # fmt: skip
def test_a_json_object_or_none(body: bytes, expected: dict[str, Any] | None) -> None:
    assert json_object(HttpResponse(200, {}, body)) == expected


def test_one_reader_serves_every_provider() -> None:
    from commercekit.payments._adyen import _wire as adyen
    from commercekit.payments._amazonpay import _wire as amazon
    from commercekit.payments._stripe import _wire as stripe

    for wire in (adyen, amazon, stripe):
        assert not hasattr(wire, "_retry_after")
        assert not hasattr(wire, "_json")
    assert retry_after_s(HttpResponse(429, {"retry-after": "2"})) == 2.0


def test_an_unreadable_2xx_is_still_an_unknown_outcome() -> None:
    def respond(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, {}, b"[]")

    for provider in ("stripe", "adyen"):
        with pytest.raises(OutcomeUnknownError):
            GATEWAYS[provider](respond).capture(
                "ref-1", Money.of("1.00", "EUR"), idempotency_key="k"
            )
