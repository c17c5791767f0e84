"""``Checkout``: the saga from a cart to a paid order that never oversells or charges twice.

Steps (compensation in brackets), each recorded in the attempt's row and step log::

    lease the cart's checkout attempt (expires: a crashed worker blocks nothing for long)
    snapshot   validate the cart and price it (the quote is kept with the attempt)
    reserve    reserve its stock under the attempt's id           [release]
    authorize  the payment, key derived from the attempt          [void]
    place_order  ONE transaction: the order under its unique checkout key, reservations
               turned into allocations, the voucher used, Order Completed in the outbox,
               the attempt's step -- all fenced by the lease
    capture    now (or at fulfilment)                              [refund]
    complete_cart

No stock row is locked across the payment call: the reservation committed
before it. Before the order exists, a failure compensates (void, release);
after it, the saga only goes forward (capture, complete). ``recover()`` does
the same for attempts whose lease ran out (a crashed worker), one claimant
per attempt, so it is safe from several workers at once. The same checkout
submitted N times gives one order: the first submission holds the lease, the
others wait for its outcome and replay it.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from commercekit.commerce._shared import check_id
from commercekit.commerce.cart import CartStatus
from commercekit.errors import (
    CheckoutInProgressError,
    CommerceKitError,
    DuplicateError,
    EmptyCartError,
    InvalidStateError,
    OperationInFlightError,
    OutOfStockError,
    PaymentDeclinedError,
    VoucherExhaustedError,
)
from commercekit.payments import (
    ActionRequired,
    PaymentState,
    ServiceSource,
)
from commercekit.repository import UnitOfWork

from ._base import PLACED_STEPS, CheckoutBase, LeaseLost
from ._model import CheckoutResult, CheckoutStatus, Recovered

__all__ = ["Checkout"]


class Checkout(CheckoutBase):
    """The checkout saga. See the module docstring.

    *capture* is ``"now"`` (capture right after the order is placed) or
    ``"fulfilment"`` (``orders.capture`` when it ships). *lease_s* bounds how
    long a crashed worker blocks an attempt; *action_timeout_s* how long a 3-D
    Secure challenge may take before ``recover()`` gives the stock back.
    *hooks* (tests) is called before and after every step and may raise.
    """

    # -- entry points -------------------------------------------------------------------

    def place(
        self,
        cart_id: str,
        source: ServiceSource,
        *,
        region: str,
        channel: str = "default",
        return_url: str | None = None,
    ) -> CheckoutResult:
        """Check the cart out: one order, or a typed error with nothing held or charged.

        Raises :class:`EmptyCartError`, :class:`OutOfStockError` (sold out),
        :class:`PaymentDeclinedError`, :class:`VoucherExhaustedError`, or
        :class:`CheckoutInProgressError` when another submission of this cart
        is still running after *wait_s*. Returns an ``action`` when the
        payment needs 3-D Secure.
        """
        check_id(cart_id, "cart_id")
        check_id(region, "region")
        for _ in range(50):
            cart = self._carts.get(cart_id)
            latest = self._store.latest(cart_id)
            if latest is not None and latest.status is CheckoutStatus.COMPLETED:
                return self._replay(latest)
            if latest is not None and latest.status is CheckoutStatus.ACTION_REQUIRED:
                return self._action_replay(latest)
            if latest is not None and latest.status is CheckoutStatus.RUNNING:
                if latest.lease_until > self._clock():
                    return self._wait(latest.id)
                owner = uuid.uuid4().hex
                if self._store.claim(latest, owner, self._lease_s):
                    return self._resume(latest.id, owner, source, return_url)
                continue
            if cart.status is not CartStatus.OPEN:
                raise InvalidStateError(f"cart {cart_id!r} is {cart.status.value}")
            if cart.empty:
                raise EmptyCartError(f"cart {cart_id!r} has no lines: add something first")
            self._refuse_if_sold_out(cart.lines)
            attempt = 1 if latest is None else latest.attempt + 1
            checkout_id = f"{cart_id}.{attempt}"
            owner = uuid.uuid4().hex
            try:
                self._store.insert(
                    checkout_id,
                    cart_id,
                    attempt,
                    owner=owner,
                    lease_s=self._lease_s,
                    customer_id=cart.customer_id,
                    region=region,
                    channel=channel,
                )
            except DuplicateError:
                continue  # another submission started this attempt first: follow it
            self._events.browse(
                "Checkout Started",
                {
                    "checkout_id": checkout_id,
                    "cart_id": cart_id,
                    "currency": cart.currency.code,
                },
            )
            return self._resume(checkout_id, owner, source, return_url)
        raise CheckoutInProgressError(f"cart {cart_id!r} keeps changing hands; retry")

    def _refuse_if_sold_out(self, lines: dict[str, int]) -> None:
        """Refuse a basket that cannot be had before any attempt is written (a cheap read)."""
        short = self._inventory.first_short(lines)
        if short is not None and self._inventory.sweep(skus=list(lines)):
            short = self._inventory.first_short(lines)  # expired reservations gave some back
        if short is not None:
            self._m.count("checkouts_total", "sold_out")
            raise OutOfStockError(f"{short!r} is sold out", sku=short)

    def complete_action(self, checkout_id: str) -> CheckoutResult:
        """Carry a checkout on after the customer's 3-D Secure challenge."""
        check_id(checkout_id, "checkout_id", max_len=80)
        row = self._require(checkout_id)
        if row.status is CheckoutStatus.COMPLETED:
            return self._replay(row)
        if row.status is CheckoutStatus.RUNNING:
            return self._wait(checkout_id)
        if row.status is not CheckoutStatus.ACTION_REQUIRED:
            self._raise_outcome(row)
        owner = uuid.uuid4().hex
        if not self._store.claim_action(row, owner, self._lease_s):
            return self._wait(checkout_id)
        try:
            result = self._payments.complete_action(checkout_id)
        except BaseException as exc:
            self._fail(checkout_id, owner, exc, placed=False)
            raise
        if isinstance(result, ActionRequired):
            self._pause(checkout_id, owner, result)
            return CheckoutResult(checkout_id, CheckoutStatus.ACTION_REQUIRED, action=result)
        decline = None
        if not result.approved:
            decline = result.decline_code.value if result.decline_code else "declined"
        return self._run(checkout_id, owner, None, None, after_authorize=True, decline=decline)

    def recover(self, *, limit: int = 100) -> list[Recovered]:
        """Finish or compensate every attempt whose lease (or 3-D Secure window) ran out.

        Safe to run from several workers at once: each attempt is claimed by one
        compare-and-set. An attempt whose order exists goes forward (capture,
        complete the cart); any other is compensated (void, release the stock).
        """
        done: list[Recovered] = []
        for row in self._store.stalled(limit):
            owner = uuid.uuid4().hex
            if not self._store.claim(row, owner, self._lease_s):
                continue
            try:
                if row.step in PLACED_STEPS or self._orders.by_checkout(row.id) is not None:
                    self._forward(row.id, owner)
                    outcome = "recovered"
                else:
                    self._compensate(row.id, owner, "recovered: abandoned before the order")
                    outcome = "compensated"
            except (OperationInFlightError, LeaseLost):
                continue  # a payment still in flight, or another worker took it: next round
            self._m.count("checkouts_total", outcome)
            done.append(Recovered(row.id, outcome))
        return done

    def steps(self, checkout_id: str) -> list[tuple[str, str, str | None]]:
        """The attempt's step log: (step, outcome, detail), oldest first."""
        return self._store.steps(checkout_id)

    def status(self, checkout_id: str) -> CheckoutStatus:
        """Where the attempt is."""
        return self._require(checkout_id).status

    # -- the saga -----------------------------------------------------------------------

    def _resume(
        self, checkout_id: str, owner: str, source: ServiceSource, return_url: str | None
    ) -> CheckoutResult:
        row = self._require(checkout_id)
        if row.step in PLACED_STEPS:
            self._forward(checkout_id, owner)
            return self._replay(self._require(checkout_id))
        return self._run(checkout_id, owner, source, return_url)

    def _run(
        self,
        checkout_id: str,
        owner: str,
        source: ServiceSource | None,
        return_url: str | None,
        *,
        after_authorize: bool = False,
        decline: str | None = None,
    ) -> CheckoutResult:
        placed = False
        try:
            if not after_authorize:
                if source is None:
                    raise InvalidStateError(f"checkout {checkout_id!r} needs a payment source")
                quote = self._step(
                    checkout_id, "snapshot", lambda: self._snapshot(checkout_id, owner)
                )
                self._step(checkout_id, "reserve", lambda: self._reserve(checkout_id, owner, quote))
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
            self._step(checkout_id, "place_order", lambda: self._place(checkout_id, owner))
            placed = True
            self._forward(checkout_id, owner)
        except PaymentDeclinedError:
            raise
        except LeaseLost:
            self._after_takeover(checkout_id)
            raise
        except BaseException as exc:
            self._fail(checkout_id, owner, exc, placed=placed)
            raise
        self._m.count("checkouts_total", "completed")
        return self._replay(self._require(checkout_id), replayed=False)

    def _step(self, checkout_id: str, step: str, work: Callable[[], Any]) -> Any:
        if self._hooks is not None:
            self._hooks("before", step, checkout_id)
        with self._m.step_seconds(step).time():
            value = work()
        if self._hooks is not None:
            self._hooks("after", step, checkout_id)
        return value

    def _snapshot(self, checkout_id: str, owner: str) -> dict[str, Any]:
        row = self._require(checkout_id)
        cart = self._carts.get(row.cart_id)
        if cart.empty:
            raise EmptyCartError(f"cart {row.cart_id!r} has no lines")
        quote = self._pricing.quote(
            cart.lines, cart.currency, region=row.region, channel=row.channel, voucher=cart.voucher
        ).snapshot()
        self._advance(checkout_id, owner, step="priced", quote=json.dumps(quote))
        return quote

    def _reserve(self, checkout_id: str, owner: str, quote: dict[str, Any]) -> None:
        demand = {ln["sku"]: ln["qty"] for ln in quote["lines"]}
        try:
            self._inventory.reserve(checkout_id, demand, ttl_s=self._ttl_s)
        except OutOfStockError as exc:
            self._finish(checkout_id, owner, CheckoutStatus.FAILED, f"sold_out:{exc.sku}")
            self._m.count("checkouts_total", "sold_out")
            raise

    def _place(self, checkout_id: str, owner: str) -> None:
        row = self._require(checkout_id)
        if row.quote is None:
            raise InvalidStateError(f"checkout {checkout_id!r} has no quote to place")
        quote = json.loads(row.quote)

        def work(uow: UnitOfWork) -> None:
            if self._orders.by_checkout(checkout_id, uow=uow) is not None:
                return  # placed already (a resumed attempt)
            order = self._orders.create(
                uow,
                checkout_key=checkout_id,
                customer_id=row.customer_id,
                quote=quote,
                payment_id=checkout_id,
                reservation_id=checkout_id,
            )
            self._inventory.commit(checkout_id, uow=uow)
            if quote.get("voucher"):
                self._pricing.vouchers.redeem(quote["voucher"], checkout_id, uow=uow)
            if not self._store.advance(
                checkout_id, owner, lease_s=self._lease_s, uow=uow, step="placed", order_id=order.id
            ):
                raise LeaseLost(f"checkout {checkout_id!r} was taken over")
            self._store.log(uow, checkout_id, "place_order", "done", order.number)

        try:
            self._db.run(work, retry=True)
        except (VoucherExhaustedError, InvalidStateError) as exc:
            # the voucher's last use went elsewhere, or the reservation was swept
            self._compensate(checkout_id, owner, f"not placed: {exc}", status="failed")
            raise

    def _forward(self, checkout_id: str, owner: str) -> None:
        row = self._require(checkout_id)
        order = self._orders.by_checkout(checkout_id)
        if order is None:
            raise InvalidStateError(f"checkout {checkout_id!r} has no order to carry on")
        if self._capture_now:  # idempotent: a captured order's capture returns at once
            self._step(checkout_id, "capture", lambda: self._orders.capture(order.id))
        # the cart and the attempt end in one transaction
        self._step(
            checkout_id,
            "complete_cart",
            lambda: self._finish(
                checkout_id, owner, CheckoutStatus.COMPLETED, None, step="completed",
                cart_id=row.cart_id,
            ),
        )  # fmt: skip

    def _compensate(
        self, checkout_id: str, owner: str, reason: str, *, status: str = "compensated"
    ) -> None:
        """Undo what the attempt holds before an order exists: void, then release the stock."""
        state = self._payments.payment(checkout_id).state
        voidable = (PaymentState.AUTHORIZED, PaymentState.REQUIRES_ACTION, PaymentState.CREATED)
        if state in voidable:
            # CREATED: an authorization may be pending (its outcome unknown); the void
            # settles it first. InvalidStateError: nothing was authorized after all.
            with contextlib.suppress(InvalidStateError):
                self._payments.void(checkout_id, idempotency_key=f"{checkout_id}:void")
        self._inventory.release(checkout_id)
        self._finish(checkout_id, owner, CheckoutStatus(status), reason[:200])

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
        step: str | None = None,
        cart_id: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status.value, "error": error}
        if step is not None:
            values["step"] = step

        def work(uow: UnitOfWork) -> bool:
            if not self._store.advance(
                checkout_id, owner, lease_s=0.0, uow=uow, lease_owner=None, **values
            ):
                return False
            if cart_id is not None:
                # merged or expired meanwhile: the order stands, the cart is closed anyway
                with contextlib.suppress(InvalidStateError):
                    self._carts.complete(cart_id, uow=uow)
            self._store.log(uow, checkout_id, step or status.value, status.value, error)
            return True

        if not self._db.run(work, retry=True).value:
            raise LeaseLost(f"checkout {checkout_id!r} was taken over by another worker")
