"""Reconciler: settles idempotency keys whose outcome is unknown by asking the provider.

An outcome is unknown when the answer was lost after sending (a timeout, a
reset, a 5xx), when a process died between the provider's answer and the
local commit (the key's lease runs out), or when an earlier lookup failed (the
key is marked unknown and holds its payment). Each is looked up at the
provider by its idempotency key (:meth:`PaymentGateway.lookup`): found, the
provider's result is recorded; absent, the key is forgotten, so a retry with
the same key sends it afresh. A lookup that fails leaves the key unknown.

How patiently a provider is retried and how many reconcile rounds run is a
:class:`PaymentRetryPolicy` (``commercekit.payments.RetryPolicy``): the one
shared policy class with the payment service's defaults, which a provider
gets a little longer than a database (4 attempts, 0.05 s up to 2 s, against
the repository's 3 attempts, 0.01 s up to 0.5 s).
"""

from __future__ import annotations

import logging
import uuid

import attrs

from commercekit._retry import RetryPolicy, at_least_one, seconds
from commercekit.errors import OutcomeUnknownError, TransientError
from commercekit.payments._async_typing import AsyncPaymentGateway
from commercekit.payments._core._flow import Attempt, Flow, call
from commercekit.payments._core._journal import PaymentJournal, recorded_result
from commercekit.payments._core._metrics import PaymentInstruments
from commercekit.payments._core._records import Claim, ClaimKind, IdempotencyRecord
from commercekit.payments._core._results import AnyResult, Operation
from commercekit.payments._typing import Clock, PaymentGateway

__all__ = ["PAYMENT_RETRY", "LookupFailedError", "PaymentRetryPolicy", "Reconciler"]


@attrs.frozen(init=False)
class PaymentRetryPolicy(RetryPolicy):
    """:class:`~commercekit.repository.RetryPolicy` with the payment service's defaults.

    4 *attempts* (the first included), waits of full jitter from
    *initial_wait_s* 0.05 s doubling up to *max_wait_s* 2 s (a provider's
    ``Retry-After`` is honoured up to that cap), and 3 *max_reconcile_rounds*.
    The former names ``max_attempts``, ``base_delay_s`` and ``max_delay_s``
    still work, with a DeprecationWarning.
    """

    attempts: int = attrs.field(default=4, validator=at_least_one)
    initial_wait_s: float = attrs.field(default=0.05, validator=seconds)
    max_wait_s: float = attrs.field(default=2.0, validator=seconds)
    max_reconcile_rounds: int = attrs.field(default=3, validator=at_least_one)


PAYMENT_RETRY = PaymentRetryPolicy()
"""The payment service's default: a provider is given a little longer than a database."""

log = logging.getLogger("commercekit.payments")


class LookupFailedError(OutcomeUnknownError):
    """The outcome is unknown and the provider could not be asked; the key stays unresolved."""


class Reconciler:
    """Looks unknown outcomes up at *gateway* and records them through *journal* (flows)."""

    def __init__(
        self,
        gateway: PaymentGateway | AsyncPaymentGateway,
        journal: PaymentJournal,
        *,
        retry: RetryPolicy,
        clock: Clock,
        lease_s: float,
        m: PaymentInstruments,
    ) -> None:
        self._gateway = gateway
        self._journal = journal
        self._retry = retry
        self._clock = clock
        self._lease_s = lease_s
        self._m = m

    def reconcile(self, *, limit: int = 100) -> Flow[list[AnyResult]]:
        """Settle up to *limit* unresolved keys; return the results found."""
        found: list[AnyResult] = []
        unresolved: list[IdempotencyRecord] = yield call(
            self._journal.store.unresolved, self._clock()
        )
        for record in unresolved[:limit]:
            try:
                result = yield from self.resolve(record)
            except (TransientError, OutcomeUnknownError) as exc:
                log.warning("payment key %s is still unresolved: %s", record.key, exc)
                continue
            if result is not None:
                found.append(result)
        return found

    def lookup(
        self, operation: Operation, key: str, reference: str | None
    ) -> Flow[AnyResult | None]:
        """Ask the provider for the operation sent with *key*; None when it never saw it.

        Raises:
            LookupFailedError: the provider could not be asked (after the safe retries).
        """
        try:
            found: AnyResult | None = yield Attempt(
                lambda: self._gateway.lookup(operation, idempotency_key=key, reference=reference),
                self._retry,
            )
        except (TransientError, OutcomeUnknownError) as exc:
            self._m.reconciliation(operation, "failed").inc()
            raise LookupFailedError(
                f"the outcome of {operation.value} with key {key!r} is unknown and the provider "
                "cannot be asked now; retry with the same key or call reconcile() later"
            ) from exc
        self._m.reconciliation(operation, "absent" if found is None else "found").inc()
        return found

    def resolve(self, record: IdempotencyRecord) -> Flow[AnyResult | None]:
        """Reconcile the key of *record*: record it if found, else forget it."""
        owner = uuid.uuid4().hex
        claim: Claim = yield call(
            self._journal.store.begin,
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
            return recorded_result(claim.record)
        operation = Operation(record.operation)
        payment = yield from self._journal.payment(record.scope)
        try:
            found = yield from self.lookup(operation, record.key, payment.reference)
        except BaseException:
            yield from self._journal.release(record.key, owner, unknown=True)
            raise
        if found is None:
            yield from self._journal.release(record.key, owner, unknown=False)
            return None
        return (yield from self._journal.commit(record.key, owner, found, payment))

    def __repr__(self) -> str:
        return f"Reconciler(gateway={self._gateway!r})"
