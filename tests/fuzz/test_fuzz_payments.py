"""Fuzzing payments: the service's entry points, cards, provider answers and redaction.

Payment ids and keys come from the shop's requests, card fields from a form,
provider answers from the network: whatever arrives, payments answers or raises
a ``commercekit.errors`` error within a time bound, a refused call records
nothing and sends nothing, and no card number gets into a message.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commercekit.errors import CommerceKitError
from commercekit.money import Money
from commercekit.payments import (
    AdyenGateway,
    Card,
    HttpRequest,
    HttpResponse,
    InMemoryIdempotencyStore,
    MockTransport,
    PaymentService,
    ProviderToken,
    SandboxGateway,
    StripeGateway,
    redact_provider_text,
)
from commercekit.payments._card import luhn_valid
from tests.fuzz.hostile import (
    any_char,
    hostile_bytes,
    hostile_text,
    json_value,
    not_a_string,
    only_ours,
)

_FUZZ = settings(
    deadline=None,
    max_examples=int(os.environ.get("COMMERCEKIT_FUZZ_EXAMPLES", "40")),
    suppress_health_check=[HealthCheck.too_slow],
)

#: Calls take microseconds to milliseconds; the bound catches a quadratic or
#: hanging path, with room for a loaded machine (2 cores shared by many jobs).
BOUND_S = 3.0


def ours(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``only_ours`` with this suite's time bound."""
    return only_ours(call, *args, bound_s=BOUND_S, **kwargs)


CARD = Card("4242424242424242", 12, 2031, cvv="123")
any_id = st.one_of(hostile_text, not_a_string, st.just("order-1"))
any_amount = st.one_of(
    st.just(Money.of("1.00", "USD")),
    st.just(Money.of("0.00", "USD")),
    st.just(Money(-5, "USD")),
    st.just(Money(10**30, "USD")),
    st.just(Money.of("1", "XAU")),
    not_a_string,
    hostile_text,
)


def card_number() -> st.SearchStrategy[str]:
    """Luhn-valid numbers of 12 to 19 digits, grouped with a separator or not."""

    def build(body: list[int], sep: str) -> str:
        digits = "".join(map(str, body))
        check = next(str(d) for d in range(10) if luhn_valid(digits + str(d)))
        number = digits + check
        return sep.join(number[i : i + 4] for i in range(0, len(number), 4))

    return st.builds(
        build,
        st.lists(st.integers(0, 9), min_size=11, max_size=18),
        st.sampled_from(["", " ", "-"]),
    )


@_FUZZ
@given(payment_id=any_id, key=st.one_of(st.none(), any_id), amount=any_amount)
def test_service_entry_points(payment_id: object, key: object, amount: object) -> None:
    store = InMemoryIdempotencyStore()
    gateway = SandboxGateway()
    service = PaymentService(gateway, store, sleep=lambda s: None)
    service.authorize("held", Money.of("5.00", "USD"), CARD)
    before = (dict(store._records), list(gateway.operations))
    calls = [
        lambda: service.authorize(payment_id, amount, CARD, idempotency_key=key),
        lambda: service.purchase(payment_id, amount, CARD, idempotency_key=key),
        lambda: service.verify(payment_id, CARD, amount, idempotency_key=key),
        lambda: service.capture(payment_id, amount, idempotency_key=key),
        lambda: service.refund(payment_id, amount, idempotency_key=key),
        lambda: service.void(payment_id, idempotency_key=key),
        lambda: service.complete_action(payment_id, idempotency_key=key),
        lambda: service.payment(payment_id),
        lambda: service.capture("held", amount, idempotency_key=key),
    ]
    for call in calls:
        records, operations = dict(store._records), list(gateway.operations)
        try:
            call()
        except CommerceKitError:
            # A refused call records nothing new and sends nothing.
            assert {k: v for k, v in store._records.items() if k in records} == records
            assert len(gateway.operations) <= len(operations) + 1
    assert all(store._records[k] == record for k, record in before[0].items())
    assert service.payment("held").reference is not None


@_FUZZ
@given(
    number=st.one_of(card_number(), hostile_text, not_a_string),
    month=st.one_of(st.integers(), st.integers(10**4300, 10**4301), not_a_string),
    year=st.one_of(st.integers(1990, 3100), st.integers(10**4300, 10**4301), hostile_text),
    cvv=st.one_of(st.none(), st.from_regex(r"\d{2,5}", fullmatch=True), hostile_text, not_a_string),
    holder=st.one_of(st.none(), hostile_text, not_a_string),
)
def test_cards(number: object, month: object, year: object, cvv: object, holder: object) -> None:
    try:
        card = Card(number, month, year, cvv=cvv, holder=holder)  # type: ignore[arg-type]
    except CommerceKitError as exc:
        texts = [str(exc), repr(exc)]
    else:
        texts = [repr(card), str(card), repr(card.number), str(card.cvv)]
        ours(ProviderToken, number)
    digits = re.sub(r"\D", "", number) if isinstance(number, str) and number.isascii() else ""
    for text in texts:
        if len(digits) >= 12:
            assert digits not in re.sub(r"[ -]", "", text)


@_FUZZ
@given(
    text=st.one_of(hostile_text, json_value, hostile_bytes, not_a_string),
    number=card_number(),
    cvc=st.from_regex(r"\d{3,4}", fullmatch=True),
    form=st.sampled_from(
        ["{n} cvc={c}", '{{"number":"{n}","cvc":"{c}"}}', "card {n} security code {c}"]
    ),
    limit=st.integers(0, 400),
)
def test_redaction(text: object, number: str, cvc: str, form: str, limit: int) -> None:
    out = ours(redact_provider_text, text, limit=limit)
    assert isinstance(out, str)
    assert len(out) <= max(limit, 3)
    assert re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029]", out) is None
    out.encode("utf-8")  # no lone surrogate survives
    mixed = ours(redact_provider_text, f"{text!s:.50} " + form.format(n=number, c=cvc))
    assert number not in mixed
    assert re.sub(r"\D", "", number) not in re.sub(r"[ -]", "", mixed)
    assert f"cvc={cvc}" not in mixed
    assert f'"cvc":"{cvc}"' not in mixed


answer_status = st.sampled_from([200, 201, 400, 402, 404, 409, 422, 429, 500, 503])
answer_body = st.one_of(
    json_value.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "id": json_value,
            "amount": json_value,
            "currency": json_value,
            "status": json_value,
            "resultCode": json_value,
            "pspReference": json_value,
            "error": json_value,
            "data": json_value,
            "amount_received": json_value,
            "latest_charge": json_value,
            "next_action": json_value,
            "last_payment_error": json_value,
            "refusalReason": json_value,
            "action": json_value,
        },
    ).map(lambda v: json.dumps(v).encode()),
    hostile_bytes,
)


@_FUZZ
@given(
    status=answer_status,
    body=answer_body,
    headers=st.dictionaries(hostile_text, st.text(any_char, max_size=20), max_size=2),
)
def test_hostile_provider_answers(status: int, body: bytes, headers: dict[str, str]) -> None:
    def answer(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status, headers, body)

    stripe = StripeGateway("sk_test_x", transport=MockTransport(answer), base_url="https://s.test")
    adyen = AdyenGateway(
        "AQE_key", "Shop", return_url="https://shop.test/r", transport=MockTransport(answer)
    )
    five = Money.of("5.00", "USD")
    for gateway in (stripe, adyen):
        ours(gateway.authorize, five, CARD, idempotency_key="k")
        ours(gateway.capture, "ref_1", five, idempotency_key="k")
        ours(gateway.refund, "ref_1", five, idempotency_key="k")
        ours(gateway.void, "ref_1", idempotency_key="k")
        ours(gateway.verify, CARD, five.currency, idempotency_key="k")
    for operation in ("authorize", "capture", "refund", "void", "verify"):
        from commercekit.payments import Operation

        ours(stripe.lookup, Operation(operation), idempotency_key="k", reference="ref_1")
