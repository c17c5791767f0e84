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

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Final

import attrs

from commercekit.errors import (
    CommerceKitError,
    ConflictError,
    InvalidInputError,
    InvalidStateError,
    OperationInFlightError,
    OutcomeUnknownError,
    TransientError,
)
from commercekit.metrics import Metrics, NullMetrics
from commercekit.money import Currency, Money
from commercekit.payments._card import Card, ProviderToken
from commercekit.payments._ledger import Payment
from commercekit.payments._metrics import PaymentInstruments
from commercekit.payments._records import ClaimKind, IdempotencyRecord, fingerprint
from commercekit.payments._results import (
    AnyResult,
    Operation,
    PaymentResult,
    result_from_json,
    result_to_json,
)
from commercekit.payments._retry import RetryPolicy
from commercekit.payments._state import PaymentState
from commercekit.payments._typing import (
    Clock,
    IdempotencyStore,
    PaymentGateway,
    PaymentSource,
    Sleep,
)
from commercekit.payments._vault import CardToken, CardVault

__all__ = ["PaymentService", "ServiceSource"]

log = logging.getLogger("commercekit.payments")

ServiceSource = Card | ProviderToken | CardToken
"""What the service charges: a card, a provider's token, or a token of the card vault."""

_MAX_ID: Final = 200
_BLOCKED_ROUNDS: Final = 4


class _LookupFailed(OutcomeUnknownError):
    """The outcome is unknown and the provider could not be asked; the key stays unresolved."""


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
        self._retry = retry if retry is not None else RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._lease_s = lease_s
        self._fingerprint_key = fingerprint_key
        self._vault = vault
        self._rng = rng if rng is not None else random.Random()
        self._caps = gateway.capabilities
        self._m = PaymentInstruments(
            metrics if metrics is not None else NullMetrics(), gateway.name
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
        assert isinstance(result, PaymentResult)
        return result

    def capture(
        self, payment_id: str, amount: Money | None = None, *, idempotency_key: str | None = None
    ) -> PaymentResult:
        """Capture *amount* (all that is left when None) of the authorization."""
        payment = self.payment(payment_id)
        if amount is None:
            amount = payment.capturable
            if amount is None:
                payment.check(Operation.CAPTURE, None)  # raises: nothing to capture
                raise InvalidStateError(f"payment {payment_id!r} has nothing to capture")
        result = self._follow(Operation.CAPTURE, payment_id, amount, idempotency_key)
        assert isinstance(result, PaymentResult)
        return result

    def void(self, payment_id: str, *, idempotency_key: str | None = None) -> PaymentResult:
        """Release the authorization of *payment_id*."""
        result = self._follow(Operation.VOID, payment_id, None, idempotency_key)
        assert isinstance(result, PaymentResult)
        return result

    def refund(
        self, payment_id: str, amount: Money | None = None, *, idempotency_key: str | None = None
    ) -> PaymentResult:
        """Refund *amount* (all that is left when None) of what was captured."""
        payment = self.payment(payment_id)
        if amount is None:
            amount = payment.refundable
            if amount is None or amount.amount_minor == 0:
                payment.check(Operation.REFUND, amount)  # raises with the reason
        result = self._follow(Operation.REFUND, payment_id, amount, idempotency_key)
        assert isinstance(result, PaymentResult)
        return result

    def complete_action(self, payment_id: str, *, idempotency_key: str | None = None) -> AnyResult:
        """Carry a payment on after the customer's action (3-D Secure, a redirect)."""
        history = self._store.history(payment_id)
        payment = Payment.replay(payment_id, [_result(r) for r in history])
        if payment.state is not PaymentState.REQUIRES_ACTION and history:
            last = _result(history[-1])
            if last.operation is Operation.COMPLETE_ACTION:
                self._m.replays[Operation.COMPLETE_ACTION].inc()
                return last  # asked again after it completed: the same answer
        rounds = sum(1 for r in history if r.operation == Operation.COMPLETE_ACTION.value)
        key = idempotency_key or f"{payment_id}:complete_action:{rounds}"
        return self._follow(Operation.COMPLETE_ACTION, payment_id, None, key)

    def payment(self, payment_id: str) -> Payment:
        """The payment as its recorded operations leave it (state, ledger, reference)."""
        _check_id(payment_id)
        return Payment.replay(payment_id, [_result(r) for r in self._store.history(payment_id)])

    def reconcile(self, *, limit: int = 100) -> list[AnyResult]:
        """Settle up to *limit* keys whose outcome is unknown; return what was found.

        Each is looked up at the provider: found, it is recorded; absent, it is
        forgotten, so the caller's retry with the same key sends it afresh.
        """
        found: list[AnyResult] = []
        for record in self._store.unresolved(self._clock())[:limit]:
            try:
                result = self._resolve(record)
            except (TransientError, OutcomeUnknownError) as exc:
                log.warning("payment key %s is still unresolved: %s", record.key, exc)
                continue
            if result is not None:
                found.append(result)
        return found

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
        _check_id(payment_id)
        if operation is not Operation.VERIFY:
            Payment(payment_id).check(operation, amount)
        self._caps.amounts.to_provider(amount)
        source_id = self._source_id(source)

        def send(payment: Payment, k: str) -> AnyResult:
            card = self._resolve_source(source)
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
        _check_id(payment_id)
        if amount is not None:
            self._caps.amounts.to_provider(amount)
        if key is None:
            key = f"{payment_id}:{operation.value}"
            if amount is not None:
                key += f":{amount.amount_minor}:{amount.currency.code}"

        def send(payment: Payment, k: str) -> AnyResult:
            reference = payment.reference
            assert reference is not None  # check() refuses operations before a reference
            if operation is Operation.CAPTURE:
                assert amount is not None
                return self._gateway.capture(reference, amount, idempotency_key=k)
            if operation is Operation.REFUND:
                assert amount is not None
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
        _check_key(key)
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
                self._resolve(claim.record)
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
            return _result(claim.record)
        payment = self.payment(payment_id)
        if claim.kind is ClaimKind.RECOVER:
            try:
                found = self._lookup(operation, key, payment.reference)
            except BaseException:
                self._release(key, owner, unknown=True)
                raise
            if found is not None:
                return self._commit(key, owner, found, payment)
        try:
            payment.check(operation, amount, multiple_captures=self._caps.multiple_captures)
        except CommerceKitError:
            self._release(key, owner, unknown=False)
            raise
        try:
            result = self._send(operation, key, payment, send)
        except OutcomeUnknownError:
            self._release(key, owner, unknown=True)
            raise
        except CommerceKitError:
            self._release(key, owner, unknown=False)  # the provider did nothing
            raise
        except BaseException:
            self._release(key, owner, unknown=True)
            raise
        return self._commit(key, owner, result, payment)

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
            except _LookupFailed:
                raise
            except OutcomeUnknownError as exc:
                self._m.unknown[operation].inc()
                log.info("outcome of %s %s unknown (%s); looking it up", operation.value, key, exc)
                found = self._lookup(operation, key, payment.reference)
                if found is not None:
                    return found
                last = exc  # the provider never saw it: sending again with the key is safe
        raise OutcomeUnknownError(
            f"{operation.value} with key {key!r} failed {self._retry.max_reconcile_rounds} times "
            "before the provider answered, and the provider has no record of it; nothing "
            "happened: retry with the same key"
        ) from last

    def _attempt(
        self,
        operation: Operation,
        payment: Payment,
        key: str,
        send: Callable[[Payment, str], AnyResult],
    ) -> AnyResult:
        self._m.attempts[operation].inc()
        with self._m.latency[operation].time():
            return send(payment, key)

    def _lookup(self, operation: Operation, key: str, reference: str | None) -> AnyResult | None:
        try:
            found = self._retry.call(
                lambda: self._gateway.lookup(operation, idempotency_key=key, reference=reference),
                sleep=self._sleep,
                rng=self._rng,
            )
        except (TransientError, OutcomeUnknownError) as exc:
            self._m.reconciliation(operation, "failed").inc()
            raise _LookupFailed(
                f"the outcome of {operation.value} with key {key!r} is unknown and the provider "
                "cannot be asked now; retry with the same key or call reconcile() later"
            ) from exc
        self._m.reconciliation(operation, "absent" if found is None else "found").inc()
        return found

    def _commit(self, key: str, owner: str, result: AnyResult, payment: Payment) -> AnyResult:
        if isinstance(result, PaymentResult):
            try:
                state = payment.apply(result).state  # the ledger's word on the payment's state
            except InvalidStateError:
                state = result.status  # recorded as the provider said; replay() will tell
            if state is not result.status:
                result = attrs.evolve(result, status=state)
        try:
            self._store.complete(key, owner=owner, result=result_to_json(result), now=self._clock())
        except ConflictError:
            record = self._store.get(key)
            if record is not None and record.result is not None:
                return result_from_json(record.result)  # another worker recorded it first
            raise
        if isinstance(result, PaymentResult) and result.decline_code is not None:
            self._m.decline(result.operation, result.decline_code).inc()
        return result

    def _release(self, key: str, owner: str, *, unknown: bool) -> None:
        try:
            self._store.release(key, owner=owner, unknown=unknown)
        except CommerceKitError as exc:  # the original error matters more
            log.warning("could not release payment key %s: %s", key, exc)

    def _resolve(self, record: IdempotencyRecord) -> AnyResult | None:
        """Reconcile another key whose outcome is unknown: record it if found, else forget it."""
        owner = uuid.uuid4().hex
        claim = self._store.begin(
            record.key,
            scope=record.scope,
            operation=record.operation,
            fingerprint=record.fingerprint,
            request=record.request,
            owner=owner,
            now=self._clock(),
            lease_s=self._lease_s,
        )
        if claim.kind is ClaimKind.REPLAY:
            return _result(claim.record)
        operation = Operation(record.operation)
        payment = self.payment(record.scope)
        try:
            found = self._lookup(operation, record.key, payment.reference)
        except BaseException:
            self._release(record.key, owner, unknown=True)
            raise
        if found is None:
            self._release(record.key, owner, unknown=False)
            return None
        return self._commit(record.key, owner, found, payment)

    # -- sources -------------------------------------------------------------------------

    def _resolve_source(self, source: ServiceSource) -> PaymentSource:
        if isinstance(source, CardToken):
            if self._vault is None:
                raise InvalidInputError("a vault token needs a PaymentService built with vault=")
            return self._vault.detokenize(source)
        return source

    def _source_id(self, source: ServiceSource) -> str:
        if isinstance(source, ProviderToken):
            return f"token:{source.value}"
        if isinstance(source, CardToken):
            return f"vault:{source.token}"
        if not isinstance(source, Card):
            raise InvalidInputError(
                f"a payment source is a Card, a ProviderToken or a CardToken, not "
                f"{type(source).__name__}"
            )
        expiry = f"{source.exp_month:02d}/{source.exp_year}"
        if self._fingerprint_key is not None:
            digest = hmac.new(
                self._fingerprint_key, f"{source.number.reveal()}|{expiry}".encode(), hashlib.sha256
            )
            return f"card:{digest.hexdigest()}"
        return f"card:{source.number.masked}|{expiry}"

    def __repr__(self) -> str:
        return f"PaymentService(gateway={self._gateway!r}, store={self._store!r})"


def _result(record: IdempotencyRecord) -> AnyResult:
    assert record.result is not None
    return _parse(record.result)


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> AnyResult:
    """Read a recorded result; results are immutable, so the same text reads once."""
    return result_from_json(text)


def _check_id(payment_id: str) -> None:
    if not isinstance(payment_id, str) or not payment_id or len(payment_id) > _MAX_ID:
        raise InvalidInputError(f"a payment id is a non-empty str of at most {_MAX_ID} characters")


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key or len(key) > 255:
        raise InvalidInputError("an idempotency key is a non-empty str of at most 255 characters")
