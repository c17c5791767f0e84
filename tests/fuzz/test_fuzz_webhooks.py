"""Fuzzing webhooks and signed URLs: signature headers, signed bodies, URLs to verify.

Webhooks come from the internet: a forged or broken delivery is refused with
``InvalidInputError`` (counted as rejected, so the app answers 400, not 500),
a validly signed but malformed body too, and nothing is recorded for it.
``HmacUrlSigner.verify`` refuses whatever is not a valid signed URL with
``SignatureError``.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from commercekit.cdn import HmacUrlSigner
from commercekit.errors import InvalidInputError
from commercekit.metrics import InMemoryMetrics
from commercekit.payments import (
    HmacSignatureVerifier,
    InMemoryIdempotencyStore,
    StripeSignatureVerifier,
    WebhookEvent,
    WebhookOutcome,
    WebhookProcessor,
    stripe_signature,
)
from tests.fuzz.hostile import (
    deeply_nested_json,
    hostile_bytes,
    hostile_text,
    json_value,
    not_a_string,
)
from tests.fuzz.test_fuzz_payments import _FUZZ, ours

NOW = 1_700_000_000
SECRET = "whsec_fuzz"

header_like = st.builds(
    lambda t, v, rest: f"t={t},v1={v}{rest}",
    hostile_text,
    hostile_text,
    st.one_of(st.just(""), hostile_text.map(lambda x: "," + x)),
)
event_like = st.fixed_dictionaries(
    {},
    optional={"id": json_value, "type": json_value, "created": json_value, "data": json_value},
).map(lambda d: json.dumps(d).encode())
body = st.one_of(
    event_like,
    json_value.map(lambda v: json.dumps(v).encode()),
    hostile_bytes,
    # Deeper than json's recursion limit, yet small enough for Hypothesis to show
    # (tests/payments/test_webhooks.py sends 100,000-deep ones).
    st.sampled_from([deeply_nested_json(3_000), b'{"a":' * 2_000 + b"1" + b"}" * 2_000]),
)


def processor() -> tuple[WebhookProcessor, InMemoryIdempotencyStore, InMemoryMetrics, list[str]]:
    store, metrics, handled = InMemoryIdempotencyStore(), InMemoryMetrics(), []

    def handler(event: WebhookEvent) -> None:
        handled.append(event.id)

    verifier = StripeSignatureVerifier([SECRET], clock=lambda: float(NOW))
    return (
        WebhookProcessor(verifier, store, handler, metrics=metrics, clock=lambda: float(NOW)),
        store,
        metrics,
        handled,
    )


def rejected(metrics: InMemoryMetrics) -> float:
    return metrics.total("commercekit_payments_webhooks_total") - sum(
        metrics.snapshot()
        .series("commercekit_payments_webhooks_total")
        .get((("outcome", kind),), 0)
        for kind in ("accepted", "duplicate")
    )


@_FUZZ
@given(
    payload=st.one_of(body, not_a_string), header=st.one_of(header_like, hostile_text, not_a_string)
)
def test_forged_deliveries_are_refused_and_counted(payload: object, header: object) -> None:
    webhooks, store, metrics, handled = processor()
    try:
        webhooks.receive(payload, header)  # type: ignore[arg-type]
    except InvalidInputError:
        assert rejected(metrics) == 1
        assert store._records == {}
        assert handled == []
    else:
        raise AssertionError("a delivery without a valid signature was accepted")


@_FUZZ
@given(payload=body, age=st.integers(-400, 400))
def test_signed_hostile_bodies_are_refused_or_handled_once(payload: bytes, age: int) -> None:
    webhooks, store, metrics, handled = processor()
    header = stripe_signature(payload, SECRET, NOW - age)
    outcome = ours(webhooks.receive, payload, header)
    if outcome is None:
        assert rejected(metrics) == 1
        assert store._records == {}
        assert handled == []
    else:
        assert outcome is WebhookOutcome.ACCEPTED
        assert ours(webhooks.receive, payload, header) is WebhookOutcome.DUPLICATE
        assert len(handled) == 1


@_FUZZ
@given(
    payload=st.one_of(hostile_bytes, not_a_string),
    signature=st.one_of(hostile_text, not_a_string),
    timestamp=st.one_of(
        st.none(), st.integers(), st.integers(10**400, 10**401), st.floats(), hostile_text
    ),
    tolerance=st.sampled_from([None, 300.0]),
)
def test_plain_hmac_verification(
    payload: object, signature: object, timestamp: object, tolerance: float | None
) -> None:
    verifier = HmacSignatureVerifier([SECRET], tolerance_s=tolerance, clock=lambda: float(NOW))
    try:
        verifier.verify(payload, signature, timestamp=timestamp)  # type: ignore[arg-type]
    except InvalidInputError:
        pass
    else:
        raise AssertionError("an unsigned payload verified")


signer = HmacUrlSigner(b"k" * 32)
signed = signer.sign("/media/a.jpg", expires_at=NOW + 60)
url_like = st.one_of(
    hostile_text,
    not_a_string,
    hostile_bytes,
    st.builds(lambda a, b: f"/{a}/{b}", hostile_text, hostile_text),
    hostile_text.map(lambda tail: signed + tail),
    st.from_regex(r"/[A-Za-z0-9_-]{0,70}/[\x00-\x7f]{0,40}(\?exp=[^&]{0,20})?", fullmatch=True),
)


@_FUZZ
@given(url=url_like)
def test_signed_url_verification(url: object) -> None:
    ours(signer.verify, url)  # None: it verified, or raised SignatureError (ours)
