"""Payments in a few lines: authorize, capture in parts, refund, and what a decline looks like.

Runs as it is, on the in-process sandbox gateway and a SQLite idempotency store.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import sqlalchemy as sa

from commercekit.errors import InvalidInputError
from commercekit.metrics import InMemoryMetrics
from commercekit.money import Money
from commercekit.payments import (
    Card,
    PaymentResult,
    PaymentService,
    SandboxGateway,
    SqlAlchemyIdempotencyStore,
)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = sa.create_engine(f"sqlite:///{Path(folder) / 'payments.db'}")
        store = SqlAlchemyIdempotencyStore(engine)
        store.create_tables()
        metrics = InMemoryMetrics()
        payments = PaymentService(SandboxGateway(), store, metrics=metrics)

        card = Card("4242 4242 4242 4242", 12, 2030, cvv="123")
        print("card:", card.masked, card.brand.value)  # never the full number
        auth = payments.authorize("order-1001", Money.of("50.00", "EUR"), card)
        print("authorize:", auth.status.value, auth.amount)
        print("capture:", payments.capture("order-1001", Money.of("30.00", "EUR")).status.value)
        print("capture:", payments.capture("order-1001").status.value)  # the rest
        print("refund:", payments.refund("order-1001", Money.of("5.00", "EUR")).status.value)

        again = payments.refund("order-1001", Money.of("5.00", "EUR"))  # a retried request
        print("same request again is a replay:", again.status.value)
        try:
            payments.refund("order-1001", Money.of("100.00", "EUR"))
        except InvalidInputError as exc:
            print("refused:", exc)

        declined = payments.authorize(
            "order-1002", Money.of("9.99", "EUR"), Card("4000 0000 0000 9995", 1, 2031)
        )
        assert isinstance(declined, PaymentResult)  # a decline, not a 3-D Secure challenge
        print("declined:", declined.outcome.value, getattr(declined.decline_code, "value", None))
        payment = payments.payment("order-1001")
        print(
            f"ledger: authorized {payment.authorized_minor}, captured {payment.captured_minor}, "
            f"refunded {payment.refunded_minor} (minor units), state {payment.state.value}"
        )
        print(
            "replays:",
            metrics.value(
                "commercekit_payments_replays_total", operation="refund", provider="sandbox"
            ),
        )
        engine.dispose()


if __name__ == "__main__":
    main()
