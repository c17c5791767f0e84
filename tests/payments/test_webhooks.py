"""Webhook signatures and exactly-once processing, with 1,000 events delivered 0-3 times."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from commercekit.errors import ConfigurationError, InvalidInputError
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

NOW = 1_700_000_000
OLD, NEW = "whsec_old", "whsec_new"


def clock() -> float:
    return float(NOW)


def event(i: int) -> str:
    return json.dumps({"id": f"evt_{i:05d}", "type": "payment_intent.succeeded", "created": NOW})


def body(i: int) -> bytes:
    return event(i).encode()


def test_a_stripe_signature_verifies_under_any_rotating_secret() -> None:
    verifier = StripeSignatureVerifier([OLD, NEW], clock=clock)
    payload = b'{"id":"evt_1","type":"x"}'
    verifier.verify(payload, stripe_signature(payload, OLD, NOW))
    verifier.verify(payload, stripe_signature(payload, NEW, NOW - 299))
    both = stripe_signature(payload, "whsec_other", NOW) + ",v1=" + "0" * 64
    with pytest.raises(InvalidInputError, match="none of the secrets"):
        verifier.verify(payload, both)


@pytest.mark.parametrize(
    ("payload", "header", "match"),
    [
        (
            b'{"id":"evt_1","type":"y"}',
            stripe_signature(b'{"id":"evt_1","type":"x"}', OLD, NOW),
            "none",
        ),
        (b"{}", stripe_signature(b"{}", OLD, NOW - 301), "tolerance"),
        (b"{}", stripe_signature(b"{}", OLD, NOW + 301), "tolerance"),
        (b"{}", "v1=abc", "no 't='"),
        (b"{}", f"t={NOW}", "no 't='"),
        (b"{}", "garbage", "no 't='"),
    ],
)
def test_tampered_stale_and_malformed_signatures_are_rejected(
    payload: bytes, header: str, match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        StripeSignatureVerifier([OLD], clock=clock).verify(payload, header)


def test_the_generic_hmac_scheme() -> None:
    plain = HmacSignatureVerifier([OLD, NEW])
    sig = plain.sign(b"body")
    plain.verify(b"body", sig)
    plain.verify(b"body", "sha256=" + sig.upper())
    with pytest.raises(InvalidInputError):
        plain.verify(b"bodY", sig)
    timed = HmacSignatureVerifier([NEW], tolerance_s=60, clock=clock)
    timed.verify(b"body", timed.sign(b"body", timestamp=NOW), timestamp=NOW)
    with pytest.raises(InvalidInputError, match="tolerance"):
        timed.verify(b"body", timed.sign(b"body", timestamp=NOW - 61), timestamp=NOW - 61)
    with pytest.raises(InvalidInputError, match="timestamp"):
        timed.verify(b"body", "00")
    with pytest.raises(ConfigurationError):
        HmacSignatureVerifier("one-secret")  # type: ignore[arg-type]
    assert OLD not in repr(plain)
    assert NEW not in repr(StripeSignatureVerifier([NEW]))


def test_a_failing_handler_runs_again_on_redelivery() -> None:
    calls: list[str] = []

    def handler(e: WebhookEvent) -> None:
        calls.append(e.id)
        if len(calls) == 1:
            raise RuntimeError("database down")

    processor = WebhookProcessor(
        StripeSignatureVerifier([OLD], clock=clock),
        InMemoryIdempotencyStore(),
        handler,
        clock=clock,
    )
    header = stripe_signature(body(1), OLD, NOW)
    with pytest.raises(RuntimeError):
        processor.receive(body(1), header)
    assert processor.receive(body(1), header) is WebhookOutcome.ACCEPTED
    assert processor.receive(body(1), header) is WebhookOutcome.DUPLICATE
    assert calls == ["evt_00001", "evt_00001"]
    with pytest.raises(InvalidInputError, match="id and a type"):
        processor.receive(b'{"type":"x"}', stripe_signature(b'{"type":"x"}', OLD, NOW))


def test_a_thousand_events_redelivered_and_shuffled_take_effect_once() -> None:
    rng = random.Random(6)
    effects: Counter[str] = Counter()
    metrics = InMemoryMetrics()
    processor = WebhookProcessor(
        StripeSignatureVerifier([OLD, NEW], clock=clock),
        InMemoryIdempotencyStore(),
        lambda e: effects.update([e.id]),
        metrics=metrics,
        clock=clock,
    )
    deliveries: list[tuple[bytes, str, bool]] = []
    sent: Counter[str] = Counter()
    for i in range(1000):
        payload = body(i)
        for _ in range(rng.randint(0, 3)):
            secret = rng.choice([OLD, NEW])
            header = stripe_signature(payload, secret, NOW - rng.randint(0, 290))
            deliveries.append((payload, header, True))
            sent[f"evt_{i:05d}"] += 1
        kind = rng.random()
        if kind < 0.1:  # tampered body
            forged = payload.replace(b"succeeded", b"failed")
            deliveries.append((forged, stripe_signature(payload, OLD, NOW), False))
        elif kind < 0.2:  # stale: a replay of an old delivery
            deliveries.append((payload, stripe_signature(payload, OLD, NOW - 3600), False))
        elif kind < 0.3:  # signed with a secret we do not hold
            deliveries.append((payload, stripe_signature(payload, "whsec_evil", NOW), False))
    rng.shuffle(deliveries)
    rejected = accepted = duplicates = 0
    for payload, header, genuine in deliveries:
        try:
            outcome = processor.receive(payload, header)
        except InvalidInputError:
            assert not genuine
            rejected += 1
            continue
        assert genuine
        if outcome is WebhookOutcome.ACCEPTED:
            accepted += 1
        else:
            duplicates += 1
    expected = {event_id for event_id, n in sent.items() if n}
    assert set(effects) == expected
    assert all(n == 1 for n in effects.values())
    assert accepted == len(expected)
    assert duplicates == sum(sent.values()) - len(expected)
    assert rejected == sum(1 for *_, genuine in deliveries if not genuine) > 200
    assert metrics.value("commercekit_payments_webhooks_total", outcome="rejected") == rejected
    print(
        f"\nwebhooks: {len(deliveries)} deliveries of 1000 events: {accepted} took effect once, "
        f"{duplicates} duplicates ignored, {rejected} tampered/stale/foreign rejected"
    )


def signed_processor(metrics: InMemoryMetrics) -> WebhookProcessor:
    return WebhookProcessor(
        StripeSignatureVerifier([OLD], clock=clock),
        InMemoryIdempotencyStore(),
        lambda e: None,
        metrics=metrics,
        clock=clock,
    )


@pytest.mark.parametrize(
    "header",
    [
        "t=\u00b2,v1=" + "0" * 64,  # a superscript digit: str.isdigit() but not int()
        "t=" + "9" * 400 + ",v1=" + "0" * 64,  # past float range
        f"t={NOW},v1=\ud800",  # a lone surrogate cannot be encoded
        f"t={NOW},v1=\u00e9" + "0" * 63,
        f"t=-{NOW},v1=" + "0" * 64,
        "t=\u0661\u0662,v1=" + "0" * 64,  # Arabic-Indic digits
    ],
)
def test_hostile_signature_headers_are_rejected_and_counted(header: str) -> None:
    metrics = InMemoryMetrics()
    processor = signed_processor(metrics)
    with pytest.raises(InvalidInputError):
        processor.receive(body(1), header)
    rejected = metrics.value("commercekit_payments_webhooks_total", outcome="rejected")
    assert rejected == 1


@pytest.mark.parametrize(
    "payload",
    [
        b'{"id":"evt_1","type":"x","created":"yesterday"}',
        b'{"id":"evt_1","type":"x","created":null}',
        b'{"id":"evt_1","type":"x","created":[1]}',
        b'{"id":"evt_1","type":"x","created":1e400}',
        b'{"id":"evt_1","type":"x","created":1.5}',
        b'{"id":"evt_1","type":"x","created":true}',
        b'{"id":"evt_1","type":"x","created":' + b"9" * 5000 + b"}",
        b'{"id":"\\ud800","type":"x"}',
        b'{"id":"' + b"e" * 300 + b'","type":"x"}',
        b'{"id":"evt_1","type":"\\udfff"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b"\xff\xfe",
        b"[1, 2]",
        b'"text"',
    ],
    ids=lambda p: repr(p[:40]),
)
def test_hostile_signed_bodies_are_rejected_and_counted(payload: bytes) -> None:
    metrics = InMemoryMetrics()
    processor = signed_processor(metrics)
    with pytest.raises(InvalidInputError):
        processor.receive(payload, stripe_signature(payload, OLD, NOW))
    rejected = metrics.value("commercekit_payments_webhooks_total", outcome="rejected")
    assert rejected == 1


@pytest.mark.parametrize(
    ("payload", "header"),
    [("{}", "t=1,v1=00"), (b"{}", b"t=1,v1=00"), (b"{}", None), (None, "t=1,v1=00")],
)
def test_wrong_types_are_rejected_and_counted(payload: object, header: object) -> None:
    metrics = InMemoryMetrics()
    with pytest.raises(InvalidInputError):
        signed_processor(metrics).receive(payload, header)  # type: ignore[arg-type]
    assert metrics.value("commercekit_payments_webhooks_total", outcome="rejected") == 1


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [
        (12345, NOW),
        (None, NOW),
        ("\ud800", NOW),
        ("sha256=\u00e9", NOW),
        ("00", "yesterday"),
        ("00", 10**400),
        ("00", float("nan")),
        ("00", True),
    ],
)
def test_the_generic_hmac_scheme_refuses_hostile_input(
    signature: object, timestamp: object
) -> None:
    verifier = HmacSignatureVerifier([OLD], tolerance_s=300, clock=clock)
    with pytest.raises(InvalidInputError):
        verifier.verify(b"{}", signature, timestamp=timestamp)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        HmacSignatureVerifier([OLD]).verify("{}", "00")  # type: ignore[arg-type]
