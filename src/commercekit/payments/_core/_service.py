"""PaymentService: exactly-once payment operations over any gateway.

Every operation runs the same way (see ``docs/payments.md``):

1. check the input; a bad request raises a typed error and records nothing;
2. claim the idempotency key in the :class:`IdempotencyStore` *before* the
   provider is called (same key and request: the recorded result comes back;
   same key, other request: :class:`~commercekit.errors.ConflictError`; key
   or payment busy on another worker: :class:`OperationInFlightError`);
3. check the ledger (no capture past the authorization, no refund past the
   captures, only moves the state table allows);
4. call the provider, retrying only what is safe to retry, with the same key;
5. when the outcome is unknown (a timeout after sending), look the operation
   up at the provider before any new attempt;
6. record the answer, which frees the payment for its next operation.

A crash between the provider's answer and step 6 leaves the key pending; once
its lease runs out, the next call with that key (or :meth:`reconcile`) looks
the operation up at the provider and records what it finds.
"""

# This module is longer than 400 lines because the one path every operation takes
# (_start/_follow -> _run -> _send) reads best beside the operations it serves.

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Final

from commercekit._retry import RetryPolicy
from commercekit.errors import (
    CommerceKitError,
    InvalidStateError,
    OperationInFlightError,
    OutcomeUnknownError,
    TransientError,
    UnavailableError,
)
from commercekit.metrics import Metrics, NullMetrics, span
from commercekit.money import Currency, Money
from commercekit.payments._core._checks import check_amount, check_id, check_key
from commercekit.payments._core._journal import PaymentJournal, recorded_result
from commercekit.payments._core._ledger import Payment
from commercekit.payments._core._metrics import PaymentInstruments
from commercekit.payments._core._reconcile import PAYMENT_RETRY, LookupFailedError, Reconciler
from commercekit.payments._core._records import ClaimKind, fingerprint
from commercekit.payments._core._results import AnyResult, Operation, PaymentResult, final_result
from commercekit.payments._core._sources import ServiceSource, SourceFingerprinter, resolve_source
from commercekit.payments._core._state import PaymentState
from commercekit.payments._redact import redact_provider_text
from commercekit.payments._typing import Clock, IdempotencyStore, PaymentGateway, Sleep
from commercekit.payments._vault._card_vault import CardVault

__all__ = ["PaymentService", "ServiceSource"]

log = logging.getLogger("commercekit.payments")

_BLOCKED_ROUNDS: Final = 4


class PaymentService:
    """Exactly-once payments over *gateway*, recorded in *store*. See the module docstring.

    *lease_s* is how long one attempt may hold a key before another worker may
    reconcile it: make it longer than the slowest provider call with its
    retries. *fingerprint_key*, when given, lets the request fingerprint of a
    raw card cover its whole number (as an HMAC); without it a card is told
    apart by brand, first six, last four and expiry only.
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
        self._retry = retry if retry is not None else PAYMENT_RETRY
        self._clock = clock
        self._sleep = sleep
        self._lease_s = lease_s
        self._sources = SourceFingerprinter(fingerprint_key)
        self._vault = vault
        self._rng = rng if rng is not None else random.Random()
        self._caps = gateway.capabilities
        self._m = PaymentInstruments(
            metrics if metrics is not None else NullMetrics(), gateway.name
        )
        self._journal = PaymentJournal(store, clock=clock, m=self._m)
        self._reconciler = Reconciler(
            gateway,
            self._journal,
            retry=self._retry,
            clock=clock,
            sleep=sleep,
            rng=self._rng,
            lease_s=lease_s,
            m=self._m,
        )

    # -- operations ----------------------------------------------------------------------

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
        return self._start(
            Operation.AUTHORIZE, payment_id, amount, source, idempotency_key, return_url
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
        return self._start(
            Operation.PURCHASE, payment_id, amount, source, idempotency_key, return_url
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
        zero = Money.zero(currency)
        result = self._start(Operation.VERIFY, payment_id, zero, source, idempotency_key, None)
        return final_result(result, Operation.VERIFY)

    def capture(
        self, payment_id: str, amount: Money | None = None, *, idempotency_key: str | None = None
    ) -> PaymentResult:
        """Capture *amount* (all that is left when None; a keyed retry replays the first)."""
        check_id(payment_id)
        check_key(idempotency_key, optional=True)
        if amount is None and idempotency_key is not None:
            amount = self._journal.requested_amount(idempotency_key, payment_id, Operation.CAPTURE)
        payment = self.payment(payment_id)
        if amount is None:
            amount = payment.capturable
            if amount is None:
                payment.check(Operation.CAPTURE, None)  # raises: nothing to capture
                raise InvalidStateError(f"payment {payment_id!r} has nothing to capture")
        result = self._follow(Operation.CAPTURE, payment_id, amount, idempotency_key)
        return final_result(result, Operation.CAPTURE)

    def void(self, payment_id: str, *, idempotency_key: str | None = None) -> PaymentResult:
        """Release the authorization of *payment_id*."""
        check_id(payment_id)
        check_key(idempotency_key, optional=True)
        result = self._follow(Operation.VOID, payment_id, None, idempotency_key)
        return final_result(result, Operation.VOID)

    def refund(
        self, payment_id: str, amount: Money | None = None, *, idempotency_key: str | None = None
    ) -> PaymentResult:
        """Refund *amount* (all that is left when None; a keyed retry replays the first)."""
        check_id(payment_id)
        check_key(idempotency_key, optional=True)
        if amount is None and idempotency_key is not None:
            amount = self._journal.requested_amount(idempotency_key, payment_id, Operation.REFUND)
        payment = self.payment(payment_id)
        if amount is None:
            amount = payment.refundable
            if amount is None or amount.amount_minor == 0:
                payment.check(Operation.REFUND, amount)  # raises with the reason
        result = self._follow(Operation.REFUND, payment_id, amount, idempotency_key)
        return final_result(result, Operation.REFUND)

    def complete_action(self, payment_id: str, *, idempotency_key: str | None = None) -> AnyResult:
        """Carry a payment on after the customer's action (3-D Secure, a redirect)."""
        check_id(payment_id)
        check_key(idempotency_key, optional=True)
        history = self._store.history(payment_id)
        payment = Payment.replay(payment_id, [recorded_result(r) for r in history])
        if payment.state is not PaymentState.REQUIRES_ACTION and history:
            last = recorded_result(history[-1])
            if last.operation is Operation.COMPLETE_ACTION:
                self._m.replays[Operation.COMPLETE_ACTION].inc()
                return last  # asked again after it completed: the same answer
        rounds = sum(1 for r in history if r.operation == Operation.COMPLETE_ACTION.value)
        key = idempotency_key or f"{payment_id}:complete_action:{rounds}"
        return self._follow(Operation.COMPLETE_ACTION, payment_id, None, key)

    def payment(self, payment_id: str) -> Payment:
        """The payment as its recorded operations leave it (state, ledger, reference)."""
        check_id(payment_id)
        return self._journal.payment(payment_id)

    def reconcile(self, *, limit: int = 100) -> list[AnyResult]:
        """Settle up to *limit* keys whose outcome is unknown; return what was found.

        Each is looked up at the provider: found, it is recorded; absent, it is
        forgotten, so the caller's retry with the same key sends it afresh.
        """
        return self._reconciler.reconcile(limit=limit)

    # -- the one path every operation takes -----------------------------------------------

    def _start(
        self,
        operation: Operation,
        payment_id: str,
        amount: Money,
        source: ServiceSource,
        key: str | None,
        return_url: str | None,
    ) -> AnyResult:
        check_id(payment_id)
        check_key(key, optional=True)
        check_amount(amount)
        if operation is not Operation.VERIFY:
            Payment(payment_id).check(operation, amount)
        self._caps.amounts.to_provider(amount)
        source_id = self._sources.source_id(source)

        def send(payment: Payment, k: str) -> AnyResult:
            card = resolve_source(source, self._vault)
            if operation is Operation.AUTHORIZE:
                return self._gateway.authorize(
                    amount, card, idempotency_key=k, return_url=return_url
                )
            if operation is Operation.PURCHASE:
                return self._gateway.purchase(
                    amount, card, idempotency_key=k, return_url=return_url
                )
            return self._gateway.verify(card, amount.currency, idempotency_key=k)

        return self._run(
            operation, payment_id, amount, key or f"{payment_id}:{operation.value}", source_id, send
        )

    def _follow(
        self, operation: Operation, payment_id: str, amount: Money | None, key: str | None
    ) -> AnyResult:
        check_id(payment_id)
        if amount is not None:
            check_amount(amount)
            self._caps.amounts.to_provider(amount)
        if key is None:
            key = f"{payment_id}:{operation.value}"
            if amount is not None:
                key += f":{amount.amount_minor}:{amount.currency.code}"

        def send(payment: Payment, k: str) -> AnyResult:
            reference = payment.reference
            if reference is None:  # check() refuses operations before a reference
                raise InvalidStateError(
                    f"payment {payment_id!r} has no provider reference to {operation.value}"
                )
            if operation in (Operation.CAPTURE, Operation.REFUND) and amount is None:
                raise InvalidStateError(f"{operation.value} of {payment_id!r} needs an amount")
            if operation is Operation.CAPTURE and amount is not None:
                return self._gateway.capture(reference, amount, idempotency_key=k)
            if operation is Operation.REFUND and amount is not None:
                return self._gateway.refund(reference, amount, idempotency_key=k)
            if operation is Operation.VOID:
                return self._gateway.void(reference, idempotency_key=k)
            return self._gateway.complete_action(reference, idempotency_key=k)

        return self._run(operation, payment_id, amount, key, None, send)

    def _run(
        self,
        operation: Operation,
        payment_id: str,
        amount: Money | None,
        key: str,
        source_id: str | None,
        send: Callable[[Payment, str], AnyResult],
    ) -> AnyResult:
        check_key(key)
        request: dict[str, str | int] = {"operation": operation.value, "payment_id": payment_id}
        if amount is not None:
            request |= {"amount_minor": amount.amount_minor, "currency": amount.currency.code}
        fp = fingerprint({**request, "source": source_id})
        owner = uuid.uuid4().hex
        for _ in range(_BLOCKED_ROUNDS):
            claim = self._store.begin(
                key,
                scope=payment_id,
                operation=operation.value,
                fingerprint=fp,
                request=json.dumps(request, sort_keys=True),
                owner=owner,
                now=self._clock(),
                lease_s=self._lease_s,
            )
            if claim.kind is not ClaimKind.BLOCKED:
                break
            try:
                self._reconciler.resolve(claim.record)
            except (TransientError, OutcomeUnknownError) as exc:
                raise OperationInFlightError(
                    f"payment {payment_id!r} waits on {claim.record.operation} with key "
                    f"{claim.record.key!r}, whose outcome is unknown and cannot be looked up "
                    "now; nothing was sent, retry later"
                ) from exc
        else:
            raise OperationInFlightError(
                f"payment {payment_id!r} stays blocked by an unresolved operation; retry shortly"
            )
        if claim.kind is ClaimKind.REPLAY:
            self._m.replays[operation].inc()
            return recorded_result(claim.record)
        payment = self.payment(payment_id)
        if claim.kind is ClaimKind.RECOVER:
            try:
                found = self._reconciler.lookup(operation, key, payment.reference)
            except BaseException:
                self._journal.release(key, owner, unknown=True)
                raise
            if found is not None:
                return self._journal.commit(key, owner, found, payment)
        try:
            payment.check(operation, amount, multiple_captures=self._caps.multiple_captures)
        except CommerceKitError:
            self._journal.release(key, owner, unknown=False)
            raise
        try:
            result = self._send(operation, key, payment, send)
        except OutcomeUnknownError:
            self._journal.release(key, owner, unknown=True)
            raise
        except CommerceKitError:
            self._journal.release(key, owner, unknown=False)  # the provider did nothing
            raise
        except BaseException:
            self._journal.release(key, owner, unknown=True)
            raise
        return self._journal.commit(key, owner, result, payment)

    def _send(
        self,
        operation: Operation,
        key: str,
        payment: Payment,
        send: Callable[[Payment, str], AnyResult],
    ) -> AnyResult:
        last: OutcomeUnknownError | None = None
        for _ in range(self._retry.max_reconcile_rounds):
            try:
                return self._retry.call(
                    lambda: self._attempt(operation, payment, key, send),
                    sleep=self._sleep,
                    rng=self._rng,
                    on_retry=lambda exc: self._m.retries[operation].inc(),
                )
            except LookupFailedError:
                raise
            except OutcomeUnknownError as exc:
                self._m.unknown[operation].inc()
                log.info(
                    "outcome of %s %s unknown (%s); looking it up",
                    operation.value,
                    redact_provider_text(repr(key)),
                    redact_provider_text(exc),
                )
                found = self._reconciler.lookup(operation, key, payment.reference)
                if found is not None:
                    return found
                last = exc  # the provider never saw it: sending again with the key is safe
        # Every attempt's answer was lost and every lookup found nothing: the
        # provider never acted, so this is a safe retry (with the same key, which
        # the provider deduplicates), not an unknown outcome.
        raise UnavailableError(
            f"{operation.value} with key {redact_provider_text(repr(key))} failed "
            f"{self._retry.max_reconcile_rounds} times before the provider answered, and the "
            "provider has no record of it; nothing happened: retry with the same key"
        ) from last

    def _attempt(
        self,
        operation: Operation,
        payment: Payment,
        key: str,
        send: Callable[[Payment, str], AnyResult],
    ) -> AnyResult:
        self._m.attempts[operation].inc()
        attributes = {"commercekit.payment.operation": operation.value}
        with (
            span("payment_gateway", kind="client", attributes=attributes),
            self._m.latency[operation].time(),
        ):
            return send(payment, key)

    def __repr__(self) -> str:
        return f"PaymentService(gateway={self._gateway!r}, store={self._store!r})"
