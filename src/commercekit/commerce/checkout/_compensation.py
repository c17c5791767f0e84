"""The saga's way back: compensation, failure hand-over, pausing and ending an attempt.

Before the order exists a failure compensates (void the authorization, release
the stock, end the attempt); after it the saga only goes forward, and a
failure hands the attempt to ``recover()`` by letting its lease run out at once.
"""

from __future__ import annotations

import contextlib
from typing import Any

import attrs

from commercekit.errors import (
    CommerceKitError,
    DuplicateError,
    EmptyCartError,
    InvalidStateError,
    NotFoundError,
    OutOfStockError,
    VoucherExhaustedError,
)
from commercekit.payments import ActionRequired, PaymentState
from commercekit.repository import UnitOfWork

from ._base import PLACED_STEPS, CheckoutBase, LeaseLost
from ._model import CheckoutStatus
from ._store import THAWING, CheckoutRow

__all__ = ["CheckoutCompensation"]

_VOIDABLE = (PaymentState.AUTHORIZED, PaymentState.REQUIRES_ACTION, PaymentState.CREATED)


class CheckoutCompensation(CheckoutBase):
    """Undoing, handing over, pausing and finishing checkout attempts."""

    def _compensate(
        self, checkout_id: str, owner: str, reason: str, *, status: str = "compensated"
    ) -> None:
        """Undo what the attempt holds before an order exists: void, then release the stock."""
        state = self._payments.payment(checkout_id).state
        if state in _VOIDABLE:
            # CREATED: an authorization may be pending (its outcome unknown); the void
            # settles it first. InvalidStateError: nothing was authorized after all.
            with contextlib.suppress(InvalidStateError):
                self._payments.void(checkout_id, idempotency_key=f"{checkout_id}:void")
        # the stock goes back in the transaction that ends the attempt
        self._finish(checkout_id, owner, CheckoutStatus(status), reason[:200], release=True)

    def _fail(self, checkout_id: str, owner: str, exc: BaseException, *, placed: bool) -> None:
        """After an unexpected failure: compensate at once if no order exists, else hand over."""
        if isinstance(exc, OutOfStockError | EmptyCartError):
            if not isinstance(exc, OutOfStockError):
                self._compensate(checkout_id, owner, f"failed: {exc}", status="failed")
            return
        if isinstance(exc, VoucherExhaustedError | InvalidStateError) and not placed:
            return  # _place compensated already
        try:
            row = self._require(checkout_id)
            if not placed and row.step not in PLACED_STEPS and isinstance(exc, Exception):
                self._compensate(checkout_id, owner, f"failed: {type(exc).__name__}")
                self._m.count("checkouts_total", "compensated")
                return
        except Exception:  # noqa: S110 - recover() finishes the job from the step log
            pass
        with contextlib.suppress(Exception):  # recover() takes it from here at once
            self._store.advance(checkout_id, owner, lease_s=-1.0)
        self._m.count("checkouts_total", "failed")

    def _refused(self, row: CheckoutRow, exc: Exception) -> None:
        """Record an attempt that failed while it started: its transaction held nothing.

        The snapshot and the reservation are written with the attempt's row, so a
        failure there rolled all of it back; the attempt is recorded as ended
        (compensated, with the reason) for whoever looks it up or replays it.
        """
        ended = attrs.evolve(
            row,
            status=CheckoutStatus.COMPENSATED,
            step=CheckoutStatus.COMPENSATED.value,
            lease_owner=None,
            error=f"failed: {type(exc).__name__}",
        )
        # DuplicateError: another submission took this attempt number; its outcome stands.
        with contextlib.suppress(DuplicateError, CommerceKitError):
            self._db.run(lambda uow: self._store.insert(uow, ended, lease_s=0.0), retry=True)
        self._m.count("checkouts_total", "compensated")

    def _after_takeover(self, checkout_id: str) -> None:
        """A worker that lost its lease: if the new owner compensated, void what we authorized."""
        row = self._store.get(checkout_id)
        if row is None or row.status not in (CheckoutStatus.COMPENSATED, CheckoutStatus.FAILED):
            return
        try:
            if self._payments.payment(checkout_id).state is PaymentState.AUTHORIZED:
                self._payments.void(checkout_id, idempotency_key=f"{checkout_id}:void")
        except CommerceKitError:
            pass  # reported by the payment's own reconciliation

    def _pause(self, checkout_id: str, owner: str, action: ActionRequired) -> None:
        if not self._store.advance(
            checkout_id,
            owner,
            lease_s=self._action_s,
            status=CheckoutStatus.ACTION_REQUIRED.value,
            step="action_required",
            lease_owner=None,
        ):
            raise LeaseLost(f"checkout {checkout_id!r} was taken over")

    def _advance(self, checkout_id: str, owner: str, **values: Any) -> None:
        if not self._store.advance(checkout_id, owner, lease_s=self._lease_s, **values):
            raise LeaseLost(f"checkout {checkout_id!r} was taken over by another worker")

    def _finish(
        self,
        checkout_id: str,
        owner: str,
        status: CheckoutStatus,
        error: str | None,
        *,
        release: bool = False,
    ) -> None:
        """End the attempt (fenced by the lease); *release* gives its stock back in the same
        transaction, whoever holds the lease (stock of an attempt that ends is never kept).

        The cart the attempt froze opens again: in that transaction with the SQL
        store; with a store outside the database just after it (the attempt's
        step says ``thawing`` until then, so ``recover()`` finishes it).
        """
        inside = self._carts.transactional
        extra = {} if inside else {"step": THAWING}

        def work(uow: UnitOfWork) -> CheckoutRow | None:
            if release:
                self._inventory.release(checkout_id, uow=uow)
            row = self._store.get(checkout_id, uow=uow)
            if row is None or not self._store.advance(
                checkout_id,
                owner,
                lease_s=0.0,
                uow=uow,
                lease_owner=None,
                status=status.value,
                error=error,
                **extra,
            ):
                return None
            if inside:
                with contextlib.suppress(NotFoundError):
                    self._carts.thaw(row.cart_id, uow=uow)
            self._store.log(uow, checkout_id, status.value, status.value, error)
            return row

        ended = self._db.run(work, retry=True).value
        if ended is None:
            raise LeaseLost(f"checkout {checkout_id!r} was taken over by another worker")
        if not inside:
            self._thaw_cart(ended)
