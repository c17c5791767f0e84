"""PaymentJournal: the recorded side of PaymentService, over an IdempotencyStore.

A payment is what its recorded results fold into (:meth:`Payment.replay`), so
the journal is the one place that writes a result (:meth:`PaymentJournal.commit`,
with the status the ledger gives it), gives a key up
(:meth:`PaymentJournal.release`) and reads a payment back. Each is a flow
(see :mod:`._flow`), so the sync and the async service share every rule here.
"""

from __future__ import annotations

import functools
import json
import logging

import attrs

from commercekit.errors import CommerceKitError, ConflictError, InvalidStateError
from commercekit.money import Money
from commercekit.payments._async_typing import AsyncIdempotencyStore
from commercekit.payments._core._flow import Flow, call
from commercekit.payments._core._ledger import Payment
from commercekit.payments._core._metrics import PaymentInstruments
from commercekit.payments._core._records import IdempotencyRecord
from commercekit.payments._core._results import (
    AnyResult,
    Operation,
    PaymentResult,
    result_from_json,
    result_to_json,
)
from commercekit.payments._typing import Clock, IdempotencyStore

__all__ = ["PaymentJournal", "recorded_result"]

log = logging.getLogger("commercekit.payments")


class PaymentJournal:
    """Reads payments from, and records results in, an idempotency store (sync or async)."""

    def __init__(
        self,
        store: IdempotencyStore | AsyncIdempotencyStore,
        *,
        clock: Clock,
        m: PaymentInstruments,
    ) -> None:
        self.store = store
        self._clock = clock
        self._m = m

    def payment(self, payment_id: str) -> Flow[Payment]:
        """The payment as its recorded operations leave it."""
        history = yield call(self.store.history, payment_id)
        return Payment.replay(payment_id, [recorded_result(r) for r in history])

    def commit(self, key: str, owner: str, result: AnyResult, payment: Payment) -> Flow[AnyResult]:
        """Record *result* for *key*, with the status the ledger gives it; return what is kept.

        When another worker recorded the key first, its result is returned.
        """
        if isinstance(result, PaymentResult):
            result = _void_amount(result, payment)
            try:
                state = payment.apply(result).state  # the ledger's word on the payment's state
            except InvalidStateError:
                state = result.status  # recorded as the provider said; replay() will tell
            if state is not result.status:
                result = attrs.evolve(result, status=state)
        try:
            yield call(
                self.store.complete,
                key,
                owner=owner,
                result=result_to_json(result),
                now=self._clock(),
            )
        except ConflictError:
            record = yield call(self.store.get, key)
            if record is not None and record.result is not None:
                return result_from_json(record.result)  # another worker recorded it first
            raise
        if isinstance(result, PaymentResult) and result.decline_code is not None:
            self._m.decline(result.operation, result.decline_code).inc()
        return result

    def requested_amount(
        self, key: str, payment_id: str, operation: Operation
    ) -> Flow[Money | None]:
        """The amount the request recorded under *key* asked for, if it was *operation*.

        A retry that says "all that is left" (no amount) means the amount of its
        first attempt, not what is left after that attempt succeeded.
        """
        record: IdempotencyRecord | None = yield call(self.store.get, key)
        if record is None or record.scope != payment_id or record.operation != operation.value:
            return None
        request = json.loads(record.request)
        if "amount_minor" not in request:
            return None
        return Money.from_minor(int(request["amount_minor"]), str(request["currency"]))

    def release(self, key: str, owner: str, *, unknown: bool) -> Flow[None]:
        """Give *key* up (forget it, or mark its outcome unknown); never raises a store error."""
        try:
            yield call(self.store.release, key, owner=owner, unknown=unknown)
        except CommerceKitError as exc:  # the original error matters more
            log.warning("could not release payment key %s: %s", key, exc)

    def __repr__(self) -> str:
        return f"PaymentJournal(store={self.store!r})"


def _void_amount(result: PaymentResult, payment: Payment) -> PaymentResult:
    """A void whose provider names no amount (Adyen's ``/cancels``) releases what was held."""
    currency = payment.currency
    if result.operation is not Operation.VOID or currency is None:
        return result
    if result.amount.currency == currency:
        return result
    return attrs.evolve(result, amount=Money.from_minor(payment.authorized_minor, currency))


def recorded_result(record: IdempotencyRecord) -> AnyResult:
    """The result a complete record holds."""
    if record.result is None:
        raise InvalidStateError(
            f"idempotency key {record.key!r} has no recorded result yet ({record.status.value})"
        )
    return _parse(record.result)


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> AnyResult:
    """Read a recorded result; results are immutable, so the same text reads once."""
    return result_from_json(text)
