"""PaymentService: exactly-once payment operations over any gateway, for sync code.

The rules live once in :class:`~._operations.PaymentOperations` (see its
docstring for the six steps every operation takes); this class runs them with
the sync driver, and :class:`~._async_service.AsyncPaymentService` runs the
same flows on asyncio.
"""

from __future__ import annotations

import random
import time
from typing import TypeVar

from commercekit._retry import RetryPolicy, sync_sleep
from commercekit.metrics import Metrics
from commercekit.money import Currency, Money
from commercekit.payments._core._flow import Flow, drive
from commercekit.payments._core._ledger import Payment
from commercekit.payments._core._operations import PaymentOperations
from commercekit.payments._core._results import AnyResult, Operation, PaymentResult
from commercekit.payments._core._sources import ServiceSource
from commercekit.payments._typing import Clock, IdempotencyStore, PaymentGateway, Sleep
from commercekit.payments._vault._card_vault import CardVault

__all__ = ["PaymentService", "ServiceSource"]

_T = TypeVar("_T")


class PaymentService:
    """Exactly-once payments over *gateway*, recorded in *store*.

    *lease_s* is how long one attempt may hold a key before another worker may
    reconcile it: make it longer than the slowest provider call with its
    retries. *fingerprint_key*, when given, lets the request fingerprint of a
    raw card cover its whole number (as an HMAC); without it a card is told
    apart by brand, first six, last four and expiry only. *retry* defaults to
    4 attempts, waits from 0.05 s up to 2 s.
    """

    def __init__(
        self,
        gateway: PaymentGateway,
        store: IdempotencyStore,
        *,
        metrics: Metrics | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
        lease_s: float = 30.0,
        fingerprint_key: bytes | None = None,
        vault: CardVault | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._gateway = gateway
        self._store = store
        self._sleep = sync_sleep(sleep, owner="PaymentService")
        self._rng = rng if rng is not None else random.Random()
        self._ops = PaymentOperations(
            gateway,
            store,
            metrics=metrics,
            retry=retry,
            clock=clock,
            lease_s=lease_s,
            fingerprint_key=fingerprint_key,
            vault=vault,
        )

    def authorize(
        self,
        payment_id: str,
        amount: Money,
        source: ServiceSource,
        *,
        idempotency_key: str | None = None,
        return_url: str | None = None,
    ) -> AnyResult:
        """Hold *amount* on *source* for payment *payment_id*; capture it later."""
        return self._run(
            self._ops.start(
                Operation.AUTHORIZE, payment_id, amount, source, idempotency_key, return_url
            )
        )

    def purchase(
        self,
        payment_id: str,
        amount: Money,
        source: ServiceSource,
        *,
        idempotency_key: str | None = None,
        return_url: str | None = None,
    ) -> AnyResult:
        """Authorize and capture *amount* at once."""
        return self._run(
            self._ops.start(
                Operation.PURCHASE, payment_id, amount, source, idempotency_key, return_url
            )
        )

    def verify(
        self,
        payment_id: str,
        source: ServiceSource,
        currency: Currency | str,
        *,
        idempotency_key: str | None = None,
    ) -> PaymentResult:
        """Check *source* with a zero-amount authorization; the payment ends voided or failed."""
        return self._run(self._ops.verify(payment_id, source, currency, idempotency_key))

    def capture(
        self, payment_id: str, amount: Money | None = None, *, idempotency_key: str | None = None
    ) -> PaymentResult:
        """Capture *amount* (all that is left when None; a keyed retry replays the first)."""
        return self._run(self._ops.capture(payment_id, amount, idempotency_key))

    def void(self, payment_id: str, *, idempotency_key: str | None = None) -> PaymentResult:
        """Release the authorization of *payment_id*."""
        return self._run(self._ops.void(payment_id, idempotency_key))

    def refund(
        self, payment_id: str, amount: Money | None = None, *, idempotency_key: str | None = None
    ) -> PaymentResult:
        """Refund *amount* (all that is left when None; a keyed retry replays the first)."""
        return self._run(self._ops.refund(payment_id, amount, idempotency_key))

    def complete_action(self, payment_id: str, *, idempotency_key: str | None = None) -> AnyResult:
        """Carry a payment on after the customer's action (3-D Secure, a redirect)."""
        return self._run(self._ops.complete_action(payment_id, idempotency_key))

    def payment(self, payment_id: str) -> Payment:
        """The payment as its recorded operations leave it (state, ledger, reference)."""
        return self._run(self._ops.payment(payment_id))

    def reconcile(self, *, limit: int = 100) -> list[AnyResult]:
        """Settle up to *limit* keys whose outcome is unknown; return what was found.

        Each is looked up at the provider: found, it is recorded; absent, it is
        forgotten, so the caller's retry with the same key sends it afresh.
        """
        return self._run(self._ops.reconciler.reconcile(limit=limit))

    def _run(self, flow: Flow[_T]) -> _T:
        return drive(flow, sleep=self._sleep, rng=self._rng)

    def __repr__(self) -> str:
        return f"PaymentService(gateway={self._gateway!r}, store={self._store!r})"
