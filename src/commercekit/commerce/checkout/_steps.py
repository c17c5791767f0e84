"""The saga's steps forward: start (snapshot + reserve), authorize, place the order, close.

A checkout that runs through without trouble takes three transactions, the
same number a bare checkout needs: the attempt's row (with its priced quote)
and its reservation; the order with its allocation; the capture's status with
the attempt's and the cart's end. Every step is timed, traced (one span per
step) and offered to the fault hooks before and after.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from commercekit.commerce.cart import Cart, CartStatus
from commercekit.commerce.inventory import Reservation, ReservationLine
from commercekit.commerce.orders import Order
from commercekit.errors import (
    CommerceKitError,
    DuplicateError,
    EmptyCartError,
    InvalidStateError,
    OutOfStockError,
    PaymentDeclinedError,
    VoucherExhaustedError,
)
from commercekit.metrics import TRACING_AVAILABLE, span
from commercekit.payments import ActionRequired, ServiceSource
from commercekit.repository import UnitOfWork

from ._base import LeaseLost
from ._compensation import CheckoutCompensation
from ._model import CheckoutResult, CheckoutStatus
from ._store import CheckoutRow

__all__ = ["CheckoutSteps"]


class _CartChanged(CommerceKitError):
    """The cart changed between its pricing and its freezing: price it again."""


@attrs.frozen
class _Started:
    """A started attempt: its row, its quote, and the lines its reservation holds."""

    row: CheckoutRow
    quote: dict[str, Any]
    lines: tuple[ReservationLine, ...]


class CheckoutSteps(CheckoutCompensation):
    """Running a checkout attempt forward, step by step."""

    def _step(self, checkout_id: str, step: str, work: Callable[[], Any]) -> Any:
        hooks = self._hooks
        if hooks is not None:
            hooks("before", step, checkout_id)
        if not TRACING_AVAILABLE:  # no opentelemetry-api in this process: no span to start
            with self._m.step_seconds(step).time():
                value = work()
        else:
            with (
                span("checkout " + step, attributes={"commercekit.checkout.id": checkout_id}),
                self._m.step_seconds(step).time(),
            ):
                value = work()
        if hooks is not None:
            hooks("after", step, checkout_id)
        return value

    # -- starting: the snapshot and the reservation, written with the attempt ------------

    def _start(self, cart: Cart, row: CheckoutRow) -> _Started | None:
        """Price the cart and write the attempt with its quote and reservation (one transaction).

        None when another submission started this attempt first. A failure
        writes nothing but the attempt's ended row (see ``_refused``).
        """
        try:
            quote = self._step(
                row.id,
                "snapshot",
                lambda: self._pricing.quote(
                    cart.lines,
                    cart.currency,
                    region=row.region,
                    channel=row.channel,
                    voucher=cart.voucher,
                ).snapshot(),
            )
        except Exception as exc:
            self._refused(row, exc)
            raise
        row = attrs.evolve(row, quote=json.dumps(quote))
        demand = {ln["sku"]: ln["qty"] for ln in quote["lines"]}

        inside = self._carts.transactional

        def work(uow: UnitOfWork) -> Reservation:
            self._store.insert(uow, row, lease_s=self._lease_s)
            # the SQL store freezes the cart with the attempt: both, or neither
            if inside and not self._carts.freeze(cart.id, version=cart.version, uow=uow):
                raise _CartChanged(cart.id)
            reservation: Reservation = self._step(
                row.id,
                "reserve",
                lambda: self._inventory.reserve_in(uow, row.id, demand, ttl_s=self._ttl_s),
            )
            return reservation

        for attempt in range(2):
            try:
                reservation = self._db.run(work, retry=True).value
            except (DuplicateError, _CartChanged):
                # another submission started this attempt (follow it), or the cart
                # changed since it was priced (price it again)
                return None
            except OutOfStockError:
                if attempt == 0 and self._inventory.sweep(skus=list(demand)):
                    continue  # expired reservations gave stock back: try once more
                self._m.count("checkouts_total", "sold_out")
                raise
            except Exception as exc:
                self._refused(row, exc)
                raise
            if not inside and not self._freeze(row, cart.version):
                return None
            return _Started(row, quote, reservation.lines)
        raise AssertionError("unreachable")  # pragma: no cover

    def _freeze(self, row: CheckoutRow, version: int | None) -> bool:
        """Freeze the cart of a started attempt kept outside the database, before the payment.

        At *version* (what was priced), or, for an attempt that resumes, only if
        it is frozen already (nobody could change it since it was priced). When
        the cart changed the attempt is compensated and False returned (the
        caller prices the cart again); when it cannot be frozen the attempt is
        compensated and the error raised.
        """
        owner = row.lease_owner or ""
        try:
            if version is None:
                cart = self._carts.get(row.cart_id)
                if cart.status is not CartStatus.FROZEN or not row.of_cart(cart.stamp):
                    self._compensate(row.id, owner, "the cart changed before the payment")
                    return False
                version = cart.version
            if self._carts.freeze(row.cart_id, version=version):
                return True
        except BaseException as exc:
            # merged or expired meanwhile, or the store is down: nothing is paid yet
            with contextlib.suppress(Exception):  # else recover() compensates it
                self._compensate(row.id, owner, f"cart not frozen: {type(exc).__name__}")
            raise
        self._compensate(row.id, owner, "the cart changed before the payment")
        return False

    # -- authorize, place, close ------------------------------------------------------------

    def _run(
        self,
        row: CheckoutRow,
        owner: str,
        source: ServiceSource | None,
        return_url: str | None,
        *,
        quote: dict[str, Any],
        lines: Sequence[ReservationLine] | None = None,
        after_authorize: bool = False,
        decline: str | None = None,
    ) -> CheckoutResult:
        checkout_id = row.id
        placed = False
        try:
            if not after_authorize:
                if source is None:
                    raise InvalidStateError(f"checkout {checkout_id!r} needs a payment source")
                result = self._step(
                    checkout_id,
                    "authorize",
                    lambda: self._payments.authorize(
                        checkout_id,
                        self._total(quote),
                        source,
                        idempotency_key=f"{checkout_id}:authorize",
                        return_url=return_url,
                    ),
                )
                if isinstance(result, ActionRequired):
                    self._pause(checkout_id, owner, result)
                    self._m.count("checkouts_total", "action_required")
                    return CheckoutResult(
                        checkout_id, CheckoutStatus.ACTION_REQUIRED, action=result
                    )
                if not result.approved:
                    decline = result.decline_code.value if result.decline_code else "declined"
            if decline is not None:
                self._compensate(checkout_id, owner, f"declined:{decline}", status="failed")
                self._m.count("checkouts_total", "declined")
                raise PaymentDeclinedError(
                    f"the payment of checkout {checkout_id!r} was declined ({decline}); "
                    "no stock is held: try another payment method",
                    decline_code=decline,
                )
            self._events.browse("Payment Info Entered", {"checkout_id": checkout_id})
            order = self._step(
                checkout_id, "place_order", lambda: self._place(row, owner, quote, lines)
            )
            placed = True
            order = self._forward(row, owner, order)
        except PaymentDeclinedError:
            raise
        except LeaseLost:
            self._after_takeover(checkout_id)
            raise
        except BaseException as exc:
            self._fail(checkout_id, owner, exc, placed=placed)
            raise
        self._m.count("checkouts_total", "completed")
        return CheckoutResult(checkout_id, CheckoutStatus.COMPLETED, order=order)

    def _snapshot(self, row: CheckoutRow, owner: str) -> dict[str, Any]:
        """Price an attempt that has no quote yet (one started before quotes were kept)."""
        cart = self._carts.get(row.cart_id)
        if cart.empty:
            raise EmptyCartError(f"cart {row.cart_id!r} has no lines")
        quote: dict[str, Any] = self._pricing.quote(
            cart.lines, cart.currency, region=row.region, channel=row.channel, voucher=cart.voucher
        ).snapshot()
        self._advance(row.id, owner, step="priced", quote=json.dumps(quote))
        return quote

    def _reserve(self, checkout_id: str, owner: str, quote: dict[str, Any]) -> None:
        """Reserve a resumed attempt's stock (a replay when its reservation exists)."""
        demand = {ln["sku"]: ln["qty"] for ln in quote["lines"]}
        try:
            self._inventory.reserve(checkout_id, demand, ttl_s=self._ttl_s)
        except OutOfStockError as exc:
            self._finish(checkout_id, owner, CheckoutStatus.FAILED, f"sold_out:{exc.sku}")
            self._m.count("checkouts_total", "sold_out")
            raise

    def _place(
        self,
        row: CheckoutRow,
        owner: str,
        quote: dict[str, Any],
        lines: Sequence[ReservationLine] | None,
    ) -> Order:
        """ONE transaction: the order, its allocation, the voucher used, the attempt placed.

        *lines*: the reservation's lines when this worker made it (saves reading them).
        """
        checkout_id = row.id

        def work(uow: UnitOfWork) -> Order:
            order = self._orders.create(
                uow,
                checkout_key=checkout_id,
                customer_id=row.customer_id,
                quote=quote,
                payment_id=checkout_id,
                reservation_id=checkout_id,
                anonymous_id=row.anonymous_id,
            )
            self._inventory.commit(checkout_id, uow=uow, lines=lines)
            if quote.get("voucher"):
                self._pricing.vouchers.redeem(quote["voucher"], checkout_id, uow=uow)
            if not self._store.advance(
                checkout_id, owner, lease_s=self._lease_s, uow=uow, step="placed", order_id=order.id
            ):
                raise LeaseLost(f"checkout {checkout_id!r} was taken over")
            self._store.log(uow, checkout_id, "place_order", "done", order.number)
            return order

        try:
            for _ in range(5):
                try:
                    placed: Order = self._db.run(work, retry=True).value
                    return placed
                except DuplicateError:
                    if self._orders.by_checkout(checkout_id) is not None:
                        # placed by the worker that took the attempt over: it carries on
                        raise LeaseLost(f"checkout {checkout_id!r} was taken over") from None
                    # the drawn order number was taken (1 in 2**40): draw again
            raise InvalidStateError(f"checkout {checkout_id!r} could not draw an order number")
        except (VoucherExhaustedError, InvalidStateError) as exc:
            # the voucher's last use went elsewhere, or the reservation was swept
            self._compensate(checkout_id, owner, f"not placed: {exc}", status="failed")
            raise

    def _forward(self, row: CheckoutRow, owner: str, order: Order | None = None) -> Order:
        """Capture (when due now); then ONE transaction: order paid, attempt and cart done."""
        if order is None:
            order = self._orders.by_checkout(row.id)
            if order is None:
                raise InvalidStateError(f"checkout {row.id!r} has no order to carry on")
        placed = order
        captured: int | None = None
        if self._capture_now:  # idempotent: a captured order's capture returns at once
            captured = self._step(row.id, "capture", lambda: self._orders.capture_payment(placed))

        def work(uow: UnitOfWork) -> tuple[Order, bool]:
            final = placed
            if captured is not None:  # what the provider took, whoever holds the lease
                final = self._orders.record_capture(uow, placed, captured)
            if not self._store.advance(
                row.id,
                owner,
                lease_s=0.0,
                uow=uow,
                lease_owner=None,
                status=CheckoutStatus.COMPLETED.value,
                step="completed",
                error=None,
            ):
                return final, False
            if self._carts.transactional:
                # merged or expired meanwhile: the order stands, the cart is closed anyway
                with contextlib.suppress(InvalidStateError):
                    self._carts.complete(row.cart_id, uow=uow)
            self._store.log(uow, row.id, "completed", CheckoutStatus.COMPLETED.value)
            return final, True

        def close() -> Order:
            final, ours = self._db.run(work, retry=True).value
            if not ours:
                raise LeaseLost(f"checkout {row.id!r} was taken over by another worker")
            return final

        result: Order = self._step(row.id, "complete_cart", close)
        if not self._carts.transactional:
            self._close_cart(row)
        return result
