"""Amazon Pay's redirect flow, signed requests and verified notifications, end to end.

The gateway talks real HTTP to the loopback imitation of Amazon Pay that the
tests use (tests/payments/fake_amazonpay.py): it checks every request's
signature with the merchant's public key. The buyer's part at Amazon (the
button, the review, paying) is played by ``buyer_starts`` and ``buyer_pays``.
Then an instant payment notification arrives as an SNS message, signed by a
certificate under a test CA, and takes effect once however often it comes.
Runs as it is in a few seconds; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for the imitation

from tests.payments.fake_amazonpay import (
    FakeAmazonPay,
    FakeSns,
    merchant_key,
    serve,
    serve_files,
)

from commercekit.money import Money
from commercekit.payments import (
    ActionRequired,
    AmazonPayConfig,
    AmazonPayGateway,
    AmazonPayNotifications,
    InMemoryIdempotencyStore,
    PaymentResult,
    PaymentService,
    ProviderToken,
    SnsVerifier,
    WebhookEvent,
)


def main() -> None:
    key = merchant_key()  # in production: the PEM file whose public half Seller Central holds
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    amazon = FakeAmazonPay(key.public_key(), public_key_id="AGPTYXGL5VH6PZ2IHGS4M4GN")
    with serve(amazon) as url:
        config = AmazonPayConfig(
            "AGPTYXGL5VH6PZ2IHGS4M4GN",
            pem,
            store_id="amzn1.application-oa2-client.example",
            region="us",
            sandbox=True,
            endpoint=url,  # leave out to talk to https://pay-api.amazon.com
        )
        gateway = AmazonPayGateway(config, return_url="https://shop.example/amazon/done")
        print("gateway:", gateway)
        payments = PaymentService(gateway, InMemoryIdempotencyStore())

        session_id = amazon.buyer_starts()  # the button made it; the buyer came back with it
        action = payments.authorize("order-9", Money.of("59.90", "USD"), ProviderToken(session_id))
        assert isinstance(action, ActionRequired)
        print("send the buyer to:", action.redirect_url)
        amazon.buyer_pays(session_id)  # the buyer pays on Amazon's page and comes back
        charge = payments.complete_action("order-9")
        assert isinstance(charge, PaymentResult)  # paid: no second action
        print("charge", charge.reference, charge.status.value, charge.amount)
        print("capture:", payments.capture("order-9", Money.of("49.90", "USD")).status.value)
        print("refund:", payments.refund("order-9", Money.of("10.00", "USD")).status.value)
        print("amazon's books (authorized, captured, refunded):", amazon.books(charge.reference))
        print("requests signed and verified:", len(amazon.requests), "refused:", amazon.rejected)

        sns = FakeSns()
        with serve_files(sns.files) as files:
            sns.base_url = files
            handled: list[str] = []

            def on_notification(event: WebhookEvent) -> None:
                handled.append(event.type)
                state = gateway.get_charge(event.data["ObjectId"])["statusDetails"]["state"]
                print("notification", event.type, "-> the charge is now", state)

            notifications = AmazonPayNotifications(
                SnsVerifier(trust_roots=[sns.root], fetch=sns.fetch),
                InMemoryIdempotencyStore(),
                on_notification,
            )
            message = {
                "ObjectType": "CHARGE",
                "ObjectId": charge.reference,
                "ChargePermissionId": charge.operation_reference,
                "NotificationType": "STATE_CHANGE",
                "NotificationVersion": "V2",
            }
            body = json.dumps(sns.message(message, message_id="4c1a7e5d-0001")).encode()
            for _ in range(3):  # SNS may deliver it more than once
                print("delivery:", notifications.receive(body).value)
            assert handled == ["CHARGE.STATE_CHANGE"]


if __name__ == "__main__":
    main()
