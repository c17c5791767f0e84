"""PaymentOperations: every rule of the payment service, once, as flows.

Every operation runs the same way (see ``docs/payments.md``):

1. check the input; a bad request raises a typed error and records nothing;
2. claim the idempotency key in the idempotency store *before* the provider
   is called (same key and request: the recorded result comes back; same
   key, other request: :class:`~commercekit.errors.ConflictError`; key or
   payment busy on another worker: :class:`OperationInFlightError`);
3. check the ledger (no capture past the authorization, no refund past the
   captures, only moves the state table allows);
4. call the provider, retrying only what is safe to retry, with the same key;
5. when the outcome is unknown (a timeout after sending), look the operation
   up at the provider before any new attempt;
6. record the answer, which frees the payment for its next operation.

A crash between the provider's answer and step 6 leaves the key pending; once
its lease runs out, the next call with that key (or ``reconcile``) looks the
operation up at the provider and records what it finds.

Each method here is a flow (see :mod:`._flow`): :class:`PaymentService` runs
it with the sync driver, :class:`AsyncPaymentService` with the asyncio driver.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Final

from commercekit._retry import RetryPolicy
from commercekit.errors import (
    CommerceKitError,
    InvalidStateError,
    OperationInFlightError,
    OutcomeUnknownError,
    TransientError,
    UnavailableError,
)
from commercekit.metrics import TRACING_AVAILABLE, Metrics, NullMetrics, span
from commercekit.money import Currency, Money
from commercekit.payments._async_typing import AsyncIdempotencyStore, AsyncPaymentGateway
from commercekit.payments._core._checks import check_amount, check_id, check_key
from commercekit.payments._core._flow import Attempt, Flow, call
from commercekit.payments._core._journal import PaymentJournal, recorded_result
from commercekit.payments._core._ledger import Payment
from commercekit.payments._core._metrics import PaymentInstruments
from commercekit.payments._core._reconcile import PAYMENT_RETRY, LookupFailedError, Reconciler
from commercekit.payments._core._records import Claim, ClaimKind, IdempotencyRecord, fingerprint
from commercekit.payments._core._results import AnyResult, Operation, PaymentResult, final_result
from commercekit.payments._core._sources import (
    ServiceSource,
    SourceFingerprinter,
    resolve_source,
)
from commercekit.payments._core._state import PaymentState
from commercekit.payments._redact import redact_provider_text
from commercekit.payments._typing import Clock, IdempotencyStore, PaymentGateway
from commercekit.payments._vault._card_vault import CardVault

__all__ = ["PaymentOperations"]

log = logging.getLogger("commercekit.payments")

_BLOCKED_ROUNDS: Final = 4

Gateway = PaymentGateway | AsyncPaymentGateway
Store = IdempotencyStore | AsyncIdempotencyStore
_Send = Callable[[Payment, str], Any]  # a gateway call: its result, or an awaitable of it


class PaymentOperations:
    """The flows of the payment service over *gateway* and *store* (sync or async twins)."""

    def __init__(
        self,
        gateway: Gateway,
        store: Store,
        *,
        metrics: Metrics | None,
        retry: RetryPolicy | None,
        clock: Clock,
        lease_s: float,
        fingerprint_key: bytes | None,
        vault: CardVault | None,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.retry = retry if retry is not None else PAYMENT_RETRY
        self._clock = clock
        self._lease_s = lease_s
        self._sources = SourceFingerprinter(fingerprint_key)
        self._vault = vault
        self._caps = gateway.capabilities
        self.m = PaymentInstruments(metrics if metrics is not None else NullMetrics(), gateway.name)
        self.journal = PaymentJournal(store, clock=clock, m=self.m)
        self.reconciler = Reconciler(
            gateway, self.journal, retry=self.retry, clock=clock, lease_s=lease_s, m=self.m
        )

    # -- operations ----------------------------------------------------------------------

    def start(
        self,
        operation: Operation,
        payment_id: str,
        amount: Money,
        source: ServiceSource,
        key: str | None,
        return_url: str | None,
    ) -> Flow[AnyResult]:
        """Authorize, purchase or verify: the operations that open a payment."""
        check_id(payment_id)
        check_key(key, optional=True)
        check_amount(amount)
        if operation is not Operation.VERIFY:
            Payment(payment_id).check(operation, amount)
        self._caps.amounts.to_provider(amount)
        source_id = self._sources.source_id(source)
        gateway = self.gateway

        def send(payment: Payment, k: str) -> Any:
            card = resolve_source(source, self._vault)
            if operation is Operation.AUTHORIZE:
                return gateway.authorize(amount, card, idempotency_key=k, return_url=return_url)
            if operation is Operation.PURCHASE:
                return gateway.purchase(amount, card, idempotency_key=k, return_url=return_url)
            return gateway.verify(card, amount.currency, idempotency_key=k)

        return (
            yield from self._run(
                operation,
                payment_id,
                amount,
                key or f"{payment_id}:{operation.value}",
                source_id,
                send,
            )
        )

    def verify(
        self, payment_id: str, source: ServiceSource, currency: Currency | str, key: str | None
    ) -> Flow[PaymentResult]:
        """A zero-amount check of *source*."""
        zero = Money.zero(currency)
        result = yield from self.start(Operation.VERIFY, payment_id, zero, source, key, None)
        return final_result(result, Operation.VERIFY)

    def capture(
        self, payment_id: str, amount: Money | None, key: str | None
    ) -> Flow[PaymentResult]:
        """Capture *amount* (all that is left when None; a keyed retry replays the first)."""
        check_id(payment_id)
        check_key(key, optional=True)
        if amount is None and key is not None:
            amount = yield from self.journal.requested_amount(key, payment_id, Operation.CAPTURE)
        payment = yield from self.payment(payment_id)
        if amount is None:
            amount = payment.capturable
            if amount is None:
                payment.check(Operation.CAPTURE, None)  # raises: nothing to capture
                raise InvalidStateError(f"payment {payment_id!r} has nothing to capture")
        result = yield from self._follow(Operation.CAPTURE, payment_id, amount, key)
        return final_result(result, Operation.CAPTURE)

    def void(self, payment_id: str, key: str | None) -> Flow[PaymentResult]:
        """Release the authorization of *payment_id*."""
        check_id(payment_id)
        check_key(key, optional=True)
        result = yield from self._follow(Operation.VOID, payment_id, None, key)
        return final_result(result, Operation.VOID)

    def refund(self, payment_id: str, amount: Money | None, key: str | None) -> Flow[PaymentResult]:
        """Refund *amount* (all that is left when None; a keyed retry replays the first)."""
        check_id(payment_id)
        check_key(key, optional=True)
        if amount is None and key is not None:
            amount = yield from self.journal.requested_amount(key, payment_id, Operation.REFUND)
        payment = yield from self.payment(payment_id)
        if amount is None:
            amount = payment.refundable
            if amount is None or amount.amount_minor == 0:
                payment.check(Operation.REFUND, amount)  # raises with the reason
        result = yield from self._follow(Operation.REFUND, payment_id, amount, key)
        return final_result(result, Operation.REFUND)

    def complete_action(self, payment_id: str, key: str | None) -> Flow[AnyResult]:
        """Carry a payment on after the customer's action (3-D Secure, a redirect)."""
        check_id(payment_id)
        check_key(key, optional=True)
        history: list[IdempotencyRecord] = yield call(self.store.history, payment_id)
        payment = Payment.replay(payment_id, [recorded_result(r) for r in history])
        if payment.state is not PaymentState.REQUIRES_ACTION and history:
            last = recorded_result(history[-1])
            if last.operation is Operation.COMPLETE_ACTION:
                self.m.replays[Operation.COMPLETE_ACTION].inc()
                return last  # asked again after it completed: the same answer
        rounds = sum(1 for r in history if r.operation == Operation.COMPLETE_ACTION.value)
        key = key or f"{payment_id}:complete_action:{rounds}"
        return (yield from self._follow(Operation.COMPLETE_ACTION, payment_id, None, key))

    def payment(self, payment_id: str) -> Flow[Payment]:
        """The payment as its recorded operations leave it."""
        check_id(payment_id)
        return (yield from self.journal.payment(payment_id))

    # -- the one path every operation takes -----------------------------------------------

    def _follow(
        self, operation: Operation, payment_id: str, amount: Money | None, key: str | None
    ) -> Flow[AnyResult]:
        check_id(payment_id)
        if amount is not None:
            check_amount(amount)
            self._caps.amounts.to_provider(amount)
        if key is None:
            key = f"{payment_id}:{operation.value}"
            if amount is not None:
                key += f":{amount.amount_minor}:{amount.currency.code}"
        gateway = self.gateway

        def send(payment: Payment, k: str) -> Any:
            reference = payment.reference
            if reference is None:  # check() refuses operations before a reference
                raise InvalidStateError(
                    f"payment {payment_id!r} has no provider reference to {operation.value}"
                )
            if operation in (Operation.CAPTURE, Operation.REFUND) and amount is None:
                raise InvalidStateError(f"{operation.value} of {payment_id!r} needs an amount")
            if operation is Operation.CAPTURE and amount is not None:
                return gateway.capture(reference, amount, idempotency_key=k)
            if operation is Operation.REFUND and amount is not None:
                return gateway.refund(reference, amount, idempotency_key=k)
            if operation is Operation.VOID:
                return gateway.void(reference, idempotency_key=k)
            return gateway.complete_action(reference, idempotency_key=k)

        return (yield from self._run(operation, payment_id, amount, key, None, send))

    def _run(
        self,
        operation: Operation,
        payment_id: str,
        amount: Money | None,
        key: str,
        source_id: str | None,
        send: _Send,
    ) -> Flow[AnyResult]:
        check_key(key)
        request: dict[str, str | int] = {"operation": operation.value, "payment_id": payment_id}
        if amount is not None:
            request |= {"amount_minor": amount.amount_minor, "currency": amount.currency.code}
        fp = fingerprint({**request, "source": source_id})
        owner = uuid.uuid4().hex
        for _ in range(_BLOCKED_ROUNDS):
            claim: Claim = yield call(
                self.store.begin,
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
                yield from self.reconciler.resolve(claim.record)
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
            self.m.replays[operation].inc()
            return recorded_result(claim.record)
        payment = yield from self.payment(payment_id)
        if claim.kind is ClaimKind.RECOVER:
            try:
                found = yield from self.reconciler.lookup(operation, key, payment.reference)
            except BaseException:
                yield from self.journal.release(key, owner, unknown=True)
                raise
            if found is not None:
                return (yield from self.journal.commit(key, owner, found, payment))
        try:
            payment.check(operation, amount, multiple_captures=self._caps.multiple_captures)
        except CommerceKitError:
            yield from self.journal.release(key, owner, unknown=False)
            raise
        try:
            result = yield from self._send(operation, key, payment, send)
        except OutcomeUnknownError:
            yield from self.journal.release(key, owner, unknown=True)
            raise
        except CommerceKitError:
            yield from self.journal.release(key, owner, unknown=False)  # the provider did nothing
            raise
        except BaseException:
            yield from self.journal.release(key, owner, unknown=True)
            raise
        return (yield from self.journal.commit(key, owner, result, payment))

    def _send(
        self, operation: Operation, key: str, payment: Payment, send: _Send
    ) -> Flow[AnyResult]:
        last: OutcomeUnknownError | None = None
        for _ in range(self.retry.max_reconcile_rounds):
            try:
                result: AnyResult = yield Attempt(
                    lambda: send(payment, key),
                    self.retry,
                    around=lambda: self._attempt(operation),
                    on_retry=lambda exc: self.m.retries[operation].inc(),
                )
                return result
            except LookupFailedError:
                raise
            except OutcomeUnknownError as exc:
                self.m.unknown[operation].inc()
                log.info(
                    "outcome of %s %s unknown (%s); looking it up",
                    operation.value,
                    redact_provider_text(repr(key)),
                    redact_provider_text(exc),
                )
                found = yield from self.reconciler.lookup(operation, key, payment.reference)
                if found is not None:
                    return found
                last = exc  # the provider never saw it: sending again with the key is safe
        # Every attempt's answer was lost and every lookup found nothing: the
        # provider never acted, so this is a safe retry (with the same key, which
        # the provider deduplicates), not an unknown outcome.
        raise UnavailableError(
            f"{operation.value} with key {redact_provider_text(repr(key))} failed "
            f"{self.retry.max_reconcile_rounds} times before the provider answered, and the "
            "provider has no record of it; nothing happened: retry with the same key"
        ) from last

    @contextlib.contextmanager
    def _attempt(self, operation: Operation) -> Iterator[None]:
        """One provider call: counted, traced and timed (around the await in async code)."""
        self.m.attempts[operation].inc()
        if not TRACING_AVAILABLE:  # no opentelemetry-api in this process: no span to start
            with self.m.latency[operation].time():
                yield
            return
        attributes = {"commercekit.payment.operation": operation.value}
        with (
            span("payment_gateway", kind="client", attributes=attributes),
            self.m.latency[operation].time(),
        ):
            yield
