"""StripeGateway against localstripe: PaymentIntents, partial capture, 3-D Secure, refunds,
signed webhooks, and a small seeded chaos run over the real HTTP transport."""

from __future__ import annotations

import http.server
import json
import random
import threading
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from commercekit.errors import InvalidInputError
from commercekit.money import Money
from commercekit.payments import (
    ActionRequired,
    Card,
    DeclineCode,
    InMemoryIdempotencyStore,
    Operation,
    PaymentResult,
    PaymentService,
    PaymentState,
    StripeGateway,
    StripeSignatureVerifier,
    UrllibTransport,
    WebhookEvent,
    WebhookProcessor,
)
from tests.integration.conftest import free_port
from tests.payments.chaos import FaultTransport, Tally, World, run_once

pytestmark = pytest.mark.integration

KEY = "sk_test_commercekit"
CHAOS_RUNS = 40


def card(number: str = "4242424242424242") -> Card:
    return Card(number, 12, 2031, cvv="123")


def post(url: str, data: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(data).encode(),
        headers={"Authorization": f"Bearer {KEY}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else {}


def get(url: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


@pytest.fixture
def service(localstripe: str) -> PaymentService:
    gateway = StripeGateway(KEY, base_url=localstripe, timeout_s=10)
    return PaymentService(gateway, InMemoryIdempotencyStore(), sleep=lambda s: None)


def test_authorize_partial_capture_and_refunds(service: PaymentService, localstripe: str) -> None:
    auth = service.authorize("ls-1", Money.of("10.00", "EUR"), card())
    assert isinstance(auth, PaymentResult)
    assert auth.status is PaymentState.AUTHORIZED
    assert auth.reference.startswith("pi_")
    capture = service.capture("ls-1", Money.of("7.00", "EUR"))
    assert capture.status is PaymentState.PARTIALLY_CAPTURED
    with pytest.raises(Exception, match="one capture"):
        service.capture("ls-1", Money.of("1.00", "EUR"))
    service.refund("ls-1", Money.of("3.00", "EUR"))
    # localstripe accepts refunding more than was captured; the ledger does not
    with pytest.raises(InvalidInputError, match="refundable"):
        service.refund("ls-1", Money.of("4.01", "EUR"))
    assert service.refund("ls-1").status is PaymentState.REFUNDED
    intent = get(f"{localstripe}/v1/payment_intents/{auth.reference}")
    assert intent["status"] == "succeeded"
    assert intent["metadata"]["commercekit_idempotency_key"] == "ls-1:authorize"


def test_void_decline_and_lookup(service: PaymentService, localstripe: str) -> None:
    service.authorize("ls-2", Money.of("5.00", "USD"), card())
    assert service.void("ls-2").status is PaymentState.VOIDED
    declined = service.purchase("ls-3", Money.of("5.00", "USD"), card("4000000000000341"))
    assert isinstance(declined, PaymentResult)
    assert declined.decline_code is DeclineCode.CARD_DECLINED
    gateway = StripeGateway(KEY, base_url=localstripe)
    found = gateway.lookup(Operation.AUTHORIZE, idempotency_key="ls-2:authorize", reference=None)
    assert found is not None
    assert found.status is PaymentState.VOIDED
    assert gateway.lookup(Operation.AUTHORIZE, idempotency_key="never", reference=None) is None


def test_three_d_secure(service: PaymentService, localstripe: str) -> None:
    action = service.authorize("ls-4", Money.of("20.00", "EUR"), card("4000002500003155"))
    assert isinstance(action, ActionRequired)
    assert action.client_secret
    assert isinstance(service.complete_action("ls-4"), ActionRequired)
    post(
        f"{localstripe}/v1/payment_intents/{action.reference}/_authenticate",
        {"client_secret": action.client_secret, "success": "true"},
    )
    done = service.complete_action("ls-4")
    assert done.status is PaymentState.AUTHORIZED
    assert service.capture("ls-4").status is PaymentState.CAPTURED


class Hook(http.server.BaseHTTPRequestHandler):
    processor: WebhookProcessor
    seen: list[int]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            self.processor.receive(body, self.headers.get("Stripe-Signature", ""))
            self.seen.append(200)
            self.send_response(200)
        except InvalidInputError:
            self.seen.append(400)
            self.send_response(400)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hook_server() -> Iterator[tuple[str, list[WebhookEvent], list[int]]]:
    events: list[WebhookEvent] = []
    Hook.seen = []
    Hook.processor = WebhookProcessor(
        StripeSignatureVerifier(["whsec_old", "whsec_ls"]),
        InMemoryIdempotencyStore(),
        events.append,
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", events, Hook.seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_signed_webhooks_are_verified_and_take_effect_once(
    service: PaymentService,
    localstripe: str,
    hook_server: tuple[str, list[WebhookEvent], list[int]],
) -> None:
    import time

    url, events, seen = hook_server
    post(
        f"{localstripe}/_config/webhooks/ck",
        {"url": url, "secret": "whsec_ls", "events[0]": "payment_intent.succeeded"},
    )
    post(
        f"{localstripe}/_config/webhooks/evil",
        {"url": url, "secret": "whsec_evil", "events[0]": "payment_intent.succeeded"},
    )
    try:
        service.purchase("ls-5", Money.of("3.00", "USD"), card())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(_key(e) == "ls-5:purchase" for e in events):
            time.sleep(0.05)
        time.sleep(0.3)  # let the foreign copy arrive too
    finally:
        for name in ("ck", "evil"):  # point both at nothing for later tests
            post(
                f"{localstripe}/_config/webhooks/{name}",
                {"url": "http://127.0.0.1:9/", "secret": "x", "events[0]": "none"},
            )
    ours = [e for e in events if _key(e) == "ls-5:purchase"]
    assert [e.type for e in ours] == ["payment_intent.succeeded"]
    assert len({e.id for e in events}) == len(events)  # each event took effect once
    assert seen.count(400) >= 1  # the copy signed with a secret we do not hold was refused
    assert seen.count(200) == len(events)


def _key(event: WebhookEvent) -> str:
    return str(event.data["data"]["object"]["metadata"].get("commercekit_idempotency_key"))


class LocalstripeProvider:
    """Reads localstripe's books through its API."""

    def __init__(self, base: str) -> None:
        self.base = base

    def executed(self, payment_id: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        for intent in get(f"{self.base}/v1/payment_intents?limit=1000")["data"]:
            key = intent["metadata"].get("commercekit_idempotency_key", "")
            if key.startswith(f"{payment_id}:") and intent["status"] != "requires_payment_method":
                counts[key] += 1
                for refund in get(
                    f"{self.base}/v1/refunds?payment_intent={intent['id']}&limit=100"
                )["data"]:
                    rkey = (refund.get("metadata") or {}).get("commercekit_idempotency_key")
                    if rkey:
                        counts[rkey] += 1
        return counts

    def books(self, reference: str) -> tuple[int, int, int]:
        intent = get(f"{self.base}/v1/payment_intents/{reference}")
        charge = intent.get("latest_charge") or {}
        refunds = get(f"{self.base}/v1/refunds?payment_intent={reference}&limit=100")["data"]
        ours = sum(
            r["amount"]
            for r in refunds
            if (r.get("metadata") or {}).get("commercekit_idempotency_key")
        )
        released = sum(
            r["amount"]
            for r in refunds
            if not (r.get("metadata") or {}).get("commercekit_idempotency_key")
        )
        captured = charge.get("amount", 0) - released if charge.get("captured") else 0
        return intent["amount"], captured, ours

    def authenticate(self, reference: str, success: bool) -> None:
        intent = get(f"{self.base}/v1/payment_intents/{reference}")
        post(
            f"{self.base}/v1/payment_intents/{reference}/_authenticate",
            {"client_secret": intent["client_secret"], "success": "true" if success else "false"},
        )


def test_seeded_chaos_against_localstripe(localstripe: str) -> None:
    transport = FaultTransport(UrllibTransport(), random.Random(2024), rate=0.2)
    gateway = StripeGateway(KEY, base_url=localstripe, transport=transport, timeout_s=10)

    def switch(on: bool) -> None:
        transport.enabled = on

    world = World(
        gateway,
        InMemoryIdempotencyStore(),
        LocalstripeProvider(localstripe),
        switch,
        single_capture=True,
    )
    tally = Tally()
    for i in range(CHAOS_RUNS):
        run_once(world, 700_000 + i, tally)
    faults = sum(transport.injected.values())
    print(f"\nlocalstripe chaos: {tally.runs} runs, {faults} faults {dict(transport.injected)}")
    print(f"finals {dict(tally.finals)}, failures {tally.failures() or 'none'}")
    assert tally.failures() == {}
    assert sum(transport.injected.values()) > 0
