"""Amazon Pay's notifications: SNS signature verification and exactly-once handling.

The signing certificate chains to a test CA (passed as the verifier's trust
root) and is served by a loopback HTTP server; the verifier's fetch seam maps
SNS's https addresses onto it, so nothing reaches the internet while the
address checks stay the real ones.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from commercekit.errors import (
    InvalidInputError,
    SignatureError,
    SignatureExpiredError,
    UnavailableError,
)
from commercekit.metrics import InMemoryMetrics
from commercekit.payments import (
    AmazonPayNotifications,
    InMemoryIdempotencyStore,
    SnsMessage,
    SnsVerifier,
    WebhookEvent,
    WebhookOutcome,
)
from tests.payments.fake_amazonpay import FakeSns, serve_files

TOPIC = "arn:aws:sns:us-east-1:291180941288:A01234567ABCDE"


@pytest.fixture(scope="module")
def sns() -> Iterator[FakeSns]:
    fake = FakeSns()
    with serve_files(fake.files) as url:
        fake.base_url = url
        yield fake


def verifier_for(sns: FakeSns, **kw: Any) -> SnsVerifier:
    return SnsVerifier(trust_roots=[sns.root], fetch=sns.fetch, **kw)


def notification(i: int) -> dict[str, Any]:
    return {
        "MerchantID": "A3URCG7Y3EXAMPLE",
        "ObjectType": "CHARGE" if i % 3 else "REFUND",
        "ObjectId": f"S01-5105180-3221187-C{i:06d}",
        "ChargePermissionId": "S01-5105180-3221187",
        "NotificationType": "STATE_CHANGE",
        "NotificationId": f"{i:08d}-5f2c-4f30-9a1c-8b3b0f0e1d2c",
        "NotificationVersion": "V2",
    }


def test_a_thousand_notifications_delivered_zero_to_three_times_take_effect_once(
    sns: FakeSns,
) -> None:
    rng = random.Random(1603)
    effects: Counter[str] = Counter()
    metrics = InMemoryMetrics()

    def handle(event: WebhookEvent) -> None:
        assert event.type in ("CHARGE.STATE_CHANGE", "REFUND.STATE_CHANGE")
        effects[event.data["ObjectId"]] += 1

    processor = AmazonPayNotifications(
        verifier_for(sns, topic_arns=[TOPIC]), InMemoryIdempotencyStore(), handle, metrics=metrics
    )
    deliveries: list[bytes] = []
    sent: Counter[str] = Counter()
    for i in range(1000):
        body = json.dumps(
            sns.message(
                notification(i),
                message_id=f"{i:08d}-aaaa-5b8e-b2a4-5d2b0c7e1f00",
                version=rng.choice("12"),
                cert=rng.choice(["chain", "leaf"]),
            )
        ).encode()
        times = rng.randint(0, 3)
        deliveries += [body] * times
        if times:
            sent[notification(i)["ObjectId"]] = 1
    rng.shuffle(deliveries)
    outcomes = Counter(processor.receive(body) for body in deliveries)
    assert effects == sent  # every delivered notification once, none twice, none invented
    assert outcomes[WebhookOutcome.ACCEPTED] == len(sent)
    assert outcomes[WebhookOutcome.DUPLICATE] == len(deliveries) - len(sent)
    assert len(sns.fetched) <= 4  # two certificate URLs (and an issuer), cached
    accepted = metrics.value("commercekit_payments_webhooks_total", outcome="accepted")
    assert accepted == len(sent)


def _tamper(sns: FakeSns) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    def signed(**kw: Any) -> dict[str, Any]:
        return sns.message(notification(1), message_id="m-1", **kw)

    def edit(change: Callable[[dict[str, Any]], None], **kw: Any) -> Callable[[], dict[str, Any]]:
        def make() -> dict[str, Any]:
            message = signed(**kw)
            change(message)
            return message

        return make

    def resigned(change: Callable[[dict[str, Any]], None]) -> Callable[[], dict[str, Any]]:
        def make() -> dict[str, Any]:
            message = signed()
            change(message)
            return sns.sign(message)

        return make

    def cert_url(url: str) -> Callable[[], dict[str, Any]]:
        return resigned(lambda m: m.update(SigningCertURL=url))

    sns_host = "https://sns.us-east-1.amazonaws.com"
    pem = "SimpleNotificationService-chain.pem"
    other = FakeSns(
        key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )  # the same name, under another (untrusted) CA
    wrong_name = FakeSns(name="sns.example.com")  # chains to its own CA; see the test
    return [
        ("message edited", edit(lambda m: m.update(Message=m["Message"].replace("C", "R")))),
        ("message id edited", edit(lambda m: m.update(MessageId="m-2"))),
        ("subject added", edit(lambda m: m.update(Subject="hello"))),
        ("type changed", edit(lambda m: m.update(Type="UnsubscribeConfirmation"))),
        ("signature of v2 claimed as v1", edit(lambda m: m.update(SignatureVersion="1"))),
        ("unknown signature version", edit(lambda m: m.update(SignatureVersion="3"))),
        ("signature not base64", edit(lambda m: m.update(Signature="%%%"))),
        ("signature cut", edit(lambda m: m.update(Signature=m["Signature"][:40]))),
        ("stale", lambda: signed(timestamp=time.time() - 7200)),
        ("from the future", lambda: signed(timestamp=time.time() + 3600)),
        ("another topic", lambda: signed(topic="arn:aws:sns:us-east-1:1:other")),
        ("signed by another key", lambda: signed(key=other.key)),
        ("plain http cert URL", cert_url(f"http://sns.us-east-1.amazonaws.com/{pem}")),
        ("cert host not SNS", cert_url(f"https://evil.example.com/{pem}")),
        ("cert host SNS-like suffix", cert_url(f"{sns_host}.evil.example/{pem}")),
        ("cert host with user info", cert_url(f"{sns_host}@evil.example/{pem}")),
        ("cert host with port", cert_url(f"{sns_host}:8443/{pem}")),
        ("cert host upper-level", cert_url(f"https://sns.amazonaws.com/{pem}")),
        ("cert not a pem", cert_url(f"{sns_host}/cert.txt")),
        ("cert missing", cert_url(f"{sns_host}/none.pem")),
        ("cert from another CA", lambda: _served_elsewhere(sns, other)),
        ("cert for another name", lambda: _served_elsewhere(sns, wrong_name, trust=True)),
        ("not a notification", lambda: {"Type": "Notification", "MessageId": "m"}),
    ]  # fmt: skip


def _served_elsewhere(sns: FakeSns, other: FakeSns, trust: bool = False) -> dict[str, Any]:
    """A message signed by *other*'s certificate, served where the verifier will fetch it."""
    path = f"/SimpleNotificationService-{id(other)}.pem"
    sns.files[path] = other.files["/SimpleNotificationService-chain.pem"]
    if trust:
        sns.extra_roots.append(other.root)
    return other.message(notification(1), message_id="m-9", cert=str(id(other)))


def test_tampered_stale_and_wrongly_signed_notifications_are_rejected(sns: FakeSns) -> None:
    sns.extra_roots = []
    cases = _tamper(sns)
    handled: list[WebhookEvent] = []
    for name, make in cases:
        body = json.dumps(make()).encode()
        roots = [sns.root, *sns.extra_roots]
        verifier = SnsVerifier(trust_roots=roots, fetch=sns.fetch, topic_arns=[TOPIC])
        processor = AmazonPayNotifications(verifier, InMemoryIdempotencyStore(), handled.append)
        try:
            processor.receive(body)
        except (InvalidInputError, UnavailableError) as exc:
            error: Exception = exc
        else:
            pytest.fail(f"{name}: accepted")
        if name == "cert missing":
            assert isinstance(error, UnavailableError), name  # SNS will deliver again
        elif name in ("stale", "from the future"):
            assert isinstance(error, SignatureExpiredError), name
        elif name not in ("not a notification", "type changed"):  # malformed, not forged
            assert isinstance(error, SignatureError), (name, error)
    assert handled == []
    # and the genuine one passes the same verifier
    ok = json.dumps(sns.message(notification(1), message_id="m-ok")).encode()
    good = AmazonPayNotifications(verifier_for(sns), InMemoryIdempotencyStore(), handled.append)
    assert good.receive(ok) is WebhookOutcome.ACCEPTED
    assert len(handled) == 1


def test_a_leaf_only_certificate_finds_its_issuer_and_is_cached(sns: FakeSns) -> None:
    verifier = verifier_for(sns)
    before = len(sns.fetched)
    for i in range(5):
        verifier.verify(json.dumps(sns.message(notification(i), message_id=f"l{i}", cert="leaf")))
    fetched = sns.fetched[before:]
    assert fetched == [
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-leaf.pem",
        sns.issuer_url,
    ]


def test_a_subscription_confirmation_is_verified_and_passed_on_once(sns: FakeSns) -> None:
    confirmations: list[SnsMessage] = []
    processor = AmazonPayNotifications(
        verifier_for(sns),
        InMemoryIdempotencyStore(),
        lambda event: None,
        on_subscription=confirmations.append,
    )
    body = json.dumps(sns.message({}, message_id="sub-1", kind="SubscriptionConfirmation")).encode()
    assert processor.receive(body) is WebhookOutcome.ACCEPTED
    assert processor.receive(body) is WebhookOutcome.DUPLICATE
    assert len(confirmations) == 1
    assert confirmations[0].subscribe_url is not None
    assert confirmations[0].subscribe_url.startswith("https://sns.us-east-1.amazonaws.com/")


def test_a_failing_handler_lets_the_redelivery_run_it(sns: FakeSns) -> None:
    calls: list[str] = []

    def flaky(event: WebhookEvent) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("database down")

    processor = AmazonPayNotifications(verifier_for(sns), InMemoryIdempotencyStore(), flaky)
    body = json.dumps(sns.message(notification(7), message_id="f-1")).encode()
    with pytest.raises(RuntimeError):
        processor.receive(body)
    assert processor.receive(body) is WebhookOutcome.ACCEPTED
    assert processor.receive(body) is WebhookOutcome.DUPLICATE
    assert calls == ["f-1", "f-1"]


def test_hostile_bodies_are_rejected_with_our_errors(sns: FakeSns) -> None:
    good = sns.message(notification(3), message_id="h-1")
    subscription = sns.message({}, message_id="h-2", kind="SubscriptionConfirmation")
    bodies: list[bytes | str] = [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"Type": ["Notification"]}',
        b"\xff\xfe",
        b"x" * 300_000,
        json.dumps({**good, "Timestamp": "\uff12\uff10\uff12\uff16-01-01T00:00:00Z"}),
        json.dumps({**good, "Timestamp": "2026-13-45T99:99:99Z"}),
        json.dumps({**good, "MessageId": "a\nb"}),
        json.dumps({**good, "Message": None}),
        json.dumps({**good, "SigningCertURL": ["https://sns.us-east-1.amazonaws.com/x.pem"]}),
        json.dumps({**subscription, "SubscribeURL": "https://evil.example/?Action=Confirm"}),
        json.dumps(sns.sign({**good, "Message": "[" * 50_000 + "]" * 50_000})),
        json.dumps(sns.sign({**good, "Message": json.dumps({"ObjectType": "CHARGE"})})),
    ]  # fmt: skip
    processor = AmazonPayNotifications(verifier_for(sns), InMemoryIdempotencyStore(), print)
    for body in bodies:
        with pytest.raises(InvalidInputError):
            processor.receive(body if isinstance(body, bytes) else body.encode())


def test_the_default_fetch_turns_a_timeout_into_a_retry_later(sns: FakeSns) -> None:
    from commercekit.errors import OutcomeUnknownError
    from commercekit.payments import HttpRequest, HttpResponse, MockTransport
    from commercekit.payments._amazonpay._sns import _https_get

    def timed_out(request: HttpRequest) -> HttpResponse:
        raise OutcomeUnknownError("read timed out")

    verifier = SnsVerifier(trust_roots=[sns.root], fetch=_https_get(MockTransport(timed_out)))
    with pytest.raises(UnavailableError):
        verifier.verify(json.dumps(sns.message(notification(2), message_id="t-1")))
    gone = _https_get(MockTransport(lambda request: HttpResponse(404, {}, b"")))
    with pytest.raises(UnavailableError):
        SnsVerifier(trust_roots=[sns.root], fetch=gone).verify(
            json.dumps(sns.message(notification(2), message_id="t-2"))
        )
