"""``Checkout``: the saga from a cart to a paid order that never oversells or charges twice.

Steps (compensation in brackets), each recorded in the attempt's row and step log::

    lease the cart's checkout attempt (expires: a crashed worker blocks nothing for long)
    snapshot   validate the cart and price it (the quote is kept with the attempt)
    reserve    reserve its stock under the attempt's id           [release]
               (the attempt's row, its quote, its reservation and the cart frozen
               at the version priced: one transaction; a cart store outside the
               database freezes it just after)                      [open the cart]
    authorize  the payment, key derived from the attempt          [void]
    place_order  ONE transaction: the order under its unique checkout key, reservations
               turned into allocations, the voucher used, Order Completed in the outbox,
               the attempt's step -- all fenced by the lease
    capture    now (or at fulfilment)                              [refund]
    complete_cart  ONE transaction: the capture's status on the order, the attempt
               completed, the cart closed (a cart store outside the database,
               such as Redis, closes it just after that commit; until then the
               cart stays frozen, and a replay or ``recover()`` closes it)

No stock row is locked across the payment call: the reservation committed
before it. Before the order exists, a failure compensates (void, release);
after it, the saga only goes forward (capture, complete). ``recover()`` does
the same for attempts whose lease ran out (a crashed worker), one claimant
per attempt, so it is safe from several workers at once. The same checkout
submitted N times gives one order: the first submission holds the lease, the
others wait for its outcome and replay it.

This module holds the entry points; the steps forward are in ``_steps``, the
way back (compensation, hand-over) in ``_compensation``.
"""

from __future__ import annotations

import json
import time
import uuid

import attrs

from commercekit.commerce._shared import check_id
from commercekit.commerce.cart import Cart, CartStatus
from commercekit.errors import (
    CheckoutInProgressError,
    EmptyCartError,
    InvalidStateError,
    NotFoundError,
    OperationInFlightError,
    OutOfStockError,
    PaymentDeclinedError,
)
from commercekit.payments import ActionRequired, ServiceSource
from commercekit.repository import UnitOfWork

from ._base import PLACED_STEPS, LeaseLost
from ._model import CheckoutResult, CheckoutStatus, Recovered
from ._steps import CheckoutSteps
from ._store import CheckoutRow

__all__ = ["Checkout"]

_FAILED: dict[type[BaseException], str] = {
    PaymentDeclinedError: "declined",
    OutOfStockError: "sold_out",
}
"""The ``outcome`` tag of a place() call that raised (by the error's class); others: error."""


class Checkout(CheckoutSteps):
    """The checkout saga. See the module docstring.

    *capture* is ``"now"`` (capture right after the order is placed) or
    ``"fulfilment"`` (``orders.capture`` when it ships). *lease_s* bounds how
    long a crashed worker blocks an attempt; *action_timeout_s* how long a 3-D
    Secure challenge may take before ``recover()`` gives the stock back.
    *hooks* (tests) is called before and after every step and may raise;
    with a cart store outside the database it is also called before
    ``close_cart``, the close that follows the last commit.
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
        anonymous_id: str | None = None,
    ) -> CheckoutResult:
        """Check the cart out: one order, or a typed error with nothing held or charged.

        Raises :class:`EmptyCartError`, :class:`OutOfStockError` (sold out),
        :class:`PaymentDeclinedError`, :class:`VoucherExhaustedError`, or
        :class:`CheckoutInProgressError` when another submission of this cart
        is still running after *wait_s*. Returns an ``action`` when the
        payment needs 3-D Secure. *anonymous_id* (a guest's analytics id) is
        kept on the order and carried by its events, so a guest's browsing
        ties to what they bought. Each call's time goes to
        ``commercekit_commerce_checkout_seconds`` by its outcome (the
        checkout-latency SLO's histogram).
        """
        started = time.perf_counter()
        try:
            result = self._check_out(cart_id, source, region, channel, return_url, anonymous_id)
        except BaseException as exc:
            outcome = next((o for t, o in _FAILED.items() if isinstance(exc, t)), "error")
            self._m.checkout_seconds(outcome).record(time.perf_counter() - started)
            raise
        if result.action is not None:
            outcome = "action_required"
        else:
            outcome = "replayed" if result.replayed else "completed"
        self._m.checkout_seconds(outcome).record(time.perf_counter() - started)
        return result

    def _check_out(
        self,
        cart_id: str,
        source: ServiceSource,
        region: str,
        channel: str,
        return_url: str | None,
        anonymous_id: str | None,
    ) -> CheckoutResult:
        check_id(cart_id, "cart_id")
        check_id(region, "region")
        if anonymous_id is not None:
            check_id(anonymous_id, "anonymous_id")
        for _ in range(50):
            latest, cart, short, number = self._db.run(
                lambda uow: self._look(uow, cart_id), retry=True
            ).value
            if latest is not None and latest.status is CheckoutStatus.COMPLETED:
                return self._replay(latest)
            if latest is not None and latest.status is CheckoutStatus.ACTION_REQUIRED:
                return self._action_replay(latest)
            if latest is not None and latest.status is CheckoutStatus.RUNNING:
                if latest.lease_until > self._clock():
                    return self._wait(latest.id)
                owner = uuid.uuid4().hex
                if self._store.claim(latest, owner, self._lease_s):
                    resumed = self._resume(latest.id, owner, source, return_url)
                    if resumed is not None:
                        return resumed
                continue  # taken by another worker, or compensated: the cart changed
            if cart is None:
                raise NotFoundError(f"no cart {cart_id!r}")
            # FROZEN with no live attempt: one that ended before it could open the
            # cart again (recover() would); the next attempt takes the freeze over
            if cart.status not in (CartStatus.OPEN, CartStatus.FROZEN):
                raise InvalidStateError(f"cart {cart_id!r} is {cart.status.value}")
            if cart.empty:
                raise EmptyCartError(f"cart {cart_id!r} has no lines: add something first")
            if short is not None:
                self._refuse_sold_out(cart.lines, short)
            owner = uuid.uuid4().hex
            row = CheckoutRow(
                id=f"{cart_id}.{number}",
                cart_id=cart_id,
                attempt=number,
                status=CheckoutStatus.RUNNING,
                step="reserved",
                lease_owner=owner,
                lease_until=0.0,
                customer_id=cart.customer_id,
                region=region,
                channel=channel,
                quote=None,
                order_id=None,
                error=None,
                anonymous_id=anonymous_id,
                cart_stamp=cart.stamp,
            )
            started = self._start(cart, row)
            if started is None:
                continue  # another submission started this attempt first: follow it
            self._events.browse(
                "Checkout Started",
                {"checkout_id": row.id, "cart_id": cart_id, "currency": cart.currency.code},
            )
            return self._run(
                started.row, owner, source, return_url, quote=started.quote, lines=started.lines
            )
        raise CheckoutInProgressError(f"cart {cart_id!r} keeps changing hands; retry")

    def _look(
        self, uow: UnitOfWork, cart_id: str
    ) -> tuple[CheckoutRow | None, Cart | None, str | None, int]:
        """One read: the cart's latest attempt, the cart, the first SKU it cannot have, and
        the number of the next attempt.

        A live attempt (completed, paused, running) needs no cart: a cart store
        with an expiry may have dropped it (None). An attempt of an earlier cart
        under this id (its stamp is another) is not this cart's: None.
        """
        latest = self._store.latest(cart_id, uow=uow)
        number = 1 if latest is None else latest.attempt + 1
        try:
            cart = self._carts.get(cart_id, uow=uow)
        except NotFoundError:
            if latest is None or latest.status not in _LIVE:
                raise
            return latest, None, None, number
        if latest is not None and not latest.of_cart(cart.stamp):
            latest = None
        short = None
        if (latest is None or latest.status not in _LIVE) and not cart.empty:
            # a cheap read that refuses a sold-out basket before any attempt is written
            short = self._inventory.first_short(cart.lines, uow=uow)
        return latest, cart, short, number

    def _refuse_sold_out(self, lines: dict[str, int], short: str) -> None:
        """Refuse a basket found short, unless expired reservations give enough back."""
        if self._inventory.sweep(skus=list(lines)) and self._inventory.first_short(lines) is None:
            return
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
        return self._run(
            row,
            owner,
            None,
            None,
            quote=json.loads(row.quote or "{}"),
            after_authorize=True,
            decline=decline,
        )

    def recover(self, *, limit: int = 100) -> list[Recovered]:
        """Finish or compensate every attempt whose lease (or 3-D Secure window) ran out.

        Safe to run from several workers at once: each attempt is claimed by one
        compare-and-set. An attempt whose order exists goes forward (capture,
        complete the cart); any other is compensated (void, release the stock).
        With a cart store outside the database it also closes (``cart_closed``)
        or opens again (``cart_thawed``) the carts of ended attempts that a
        crash or the store being down left frozen.
        """
        done: list[Recovered] = []
        for row in self._store.stalled(limit):
            owner = uuid.uuid4().hex
            if not self._store.claim(row, owner, self._lease_s):
                continue
            try:
                order = self._orders.by_checkout(row.id)
                if row.step in PLACED_STEPS or order is not None:
                    self._forward(row, owner, order)
                    outcome = "recovered"
                else:
                    self._compensate(row.id, owner, "recovered: abandoned before the order")
                    outcome = "compensated"
            except (OperationInFlightError, LeaseLost):
                continue  # a payment still in flight, or another worker took it: next round
            self._m.count("checkouts_total", outcome)
            done.append(Recovered(row.id, outcome))
        if not self._carts.transactional:
            done.extend(self._settle_carts(limit))
        return done

    def _settle_carts(self, limit: int) -> list[Recovered]:
        """Close or open again the carts (kept outside the database) of ended attempts.

        Those whose owner crashed, or whose store was down, between the commit
        that ended the attempt and the cart's change: until then the cart stays
        frozen, and takes no change.
        """
        done: list[Recovered] = []
        for row in self._store.unsettled(limit):
            if row.status is CheckoutStatus.COMPLETED:
                if self._close_cart(row):
                    done.append(Recovered(row.id, "cart_closed"))
            elif self._thaw_cart(row):
                done.append(Recovered(row.id, "cart_thawed"))
        return done

    def steps(self, checkout_id: str) -> list[tuple[str, str, str | None]]:
        """The attempt's step log: (step, outcome, detail), oldest first."""
        return self._store.steps(checkout_id)

    def status(self, checkout_id: str) -> CheckoutStatus:
        """Where the attempt is."""
        return self._require(checkout_id).status

    def _resume(
        self, checkout_id: str, owner: str, source: ServiceSource, return_url: str | None
    ) -> CheckoutResult | None:
        """Carry on an attempt this worker claimed after its first owner's lease ran out.

        None when the attempt was compensated instead because its cart (kept
        outside the database) was not frozen: it may have changed since it was
        priced, so the caller starts a new attempt.
        """
        row = self._require(checkout_id)
        if row.step in PLACED_STEPS:
            self._forward(row, owner)
            return self._replay(self._require(checkout_id))
        row = attrs.evolve(row, lease_owner=owner)
        if not self._carts.transactional and not self._freeze(row, None):
            return None
        try:
            quote = json.loads(row.quote) if row.quote else self._snapshot(row, owner)
            self._step(checkout_id, "reserve", lambda: self._reserve(checkout_id, owner, quote))
        except LeaseLost:
            raise
        except BaseException as exc:
            self._fail(checkout_id, owner, exc, placed=False)
            raise
        return self._run(row, owner, source, return_url, quote=quote)


_LIVE = (CheckoutStatus.COMPLETED, CheckoutStatus.ACTION_REQUIRED, CheckoutStatus.RUNNING)
