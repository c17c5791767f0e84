"""3-D Secure as a typed ActionRequired, a card vault with key rotation, and signed webhooks.

Runs as it is, in process, in about a second.
"""

from __future__ import annotations

import json
import secrets
import time

from commercekit.money import Money
from commercekit.payments import (
    ActionRequired,
    Card,
    CardVault,
    InMemoryIdempotencyStore,
    InMemoryVaultStore,
    PaymentService,
    SandboxGateway,
    StaticKeyRing,
    StripeSignatureVerifier,
    WebhookProcessor,
    stripe_signature,
)


def main() -> None:
    gateway = SandboxGateway()
    old_key, new_key = secrets.token_bytes(32), secrets.token_bytes(32)
    store = InMemoryVaultStore()
    vault = CardVault(StaticKeyRing({"2024": old_key}, "2024"), store)
    token = vault.tokenize(Card("4000 0000 0000 3220", 6, 2031, cvv="123"))
    print("vault token:", token.token[:10] + "...", "card", vault.masked(token))

    payments = PaymentService(gateway, InMemoryIdempotencyStore(), vault=vault)
    result = payments.purchase("order-7", Money.of("120.00", "USD"), token)
    assert isinstance(result, ActionRequired)
    print("needs the customer:", result.action_type, "->", result.redirect_url)
    gateway.authenticate(result.reference, success=True)  # the customer passes 3-D Secure
    print("after the challenge:", payments.complete_action("order-7").status.value)

    rotated = CardVault(StaticKeyRing({"2024": old_key, "2025": new_key}, "2025"), store)
    print("re-encrypted under the new key:", rotated.rotate(), "card(s)")

    handled: list[str] = []
    processor = WebhookProcessor(
        StripeSignatureVerifier(["whsec_old", "whsec_new"]),
        InMemoryIdempotencyStore(),
        lambda event: handled.append(event.id),
    )
    body = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded"}).encode()
    header = stripe_signature(body, "whsec_new", int(time.time()))
    for _ in range(3):  # the provider delivers it three times
        print("webhook:", processor.receive(body, header).value)
    print("took effect", len(handled), "time(s)")


if __name__ == "__main__":
    main()
