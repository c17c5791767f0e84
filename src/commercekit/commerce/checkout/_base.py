"""The checkout saga's state and its replays: construction, waiting, outcomes replayed."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from commercekit._retry import sync_sleep
from commercekit.commerce._events import BusinessEvents
from commercekit.commerce._instruments import CommerceInstruments
from commercekit.commerce.cart import Carts, CartStatus
from commercekit.commerce.inventory import Inventory
from commercekit.commerce.orders import Orders
from commercekit.commerce.pricing import Pricing
from commercekit.errors import (
    CheckoutInProgressError,
    CommerceKitError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    OutOfStockError,
    PaymentDeclinedError,
)
from commercekit.money import Money
from commercekit.payments import (
    ActionRequired,
    Operation,
    PaymentService,
)
from commercekit.repository import Database
from commercekit.typing import WallClock

from ._model import CheckoutResult, CheckoutStatus, FaultHook
from ._store import CLOSING, THAWING, CheckoutRow, CheckoutStore

__all__ = ["PLACED_STEPS", "CheckoutBase", "LeaseLost"]

PLACED_STEPS = ("placed", "captured", "completed", "cart_closed")


class LeaseLost(CommerceKitError):
    """Another worker took the attempt over (our lease ran out): stop, it carries on."""


class CheckoutBase:
    """What the saga shares: its collaborators and settings, replays, waiting."""

    def __init__(
        self,
        db: Database,
        *,
        carts: Carts,
        pricing: Pricing,
        inventory: Inventory,
        orders: Orders,
        payments: PaymentService,
        events: BusinessEvents,
        metrics: CommerceInstruments,
        clock: WallClock,
        capture: str = "now",
        lease_s: float = 60.0,
        reservation_ttl_s: float = 1200.0,
        action_timeout_s: float = 900.0,
        wait_s: float = 30.0,
        poll_s: float = 0.02,
        sleep: Callable[[float], None] = time.sleep,
        hooks: FaultHook | None = None,
    ) -> None:
        if capture not in ("now", "fulfilment"):
            raise InvalidInputError("capture is 'now' or 'fulfilment'")
        if reservation_ttl_s <= action_timeout_s:
            raise InvalidInputError("reservation_ttl_s must outlast action_timeout_s")
        self._db = db
        self._carts = carts
        self._pricing = pricing
        self._inventory = inventory
        self._orders = orders
        self._payments = payments
        self._events = events
        self._m = metrics
        self._clock = clock
        self._capture_now = capture == "now"
        self._lease_s = lease_s
        self._ttl_s = reservation_ttl_s
        self._action_s = action_timeout_s
        self._wait_s = wait_s
        self._poll_s = poll_s
        self._sleep = sync_sleep(sleep, owner="Checkout")
        self._hooks = hooks
        self._store = CheckoutStore(db, clock)

    # -- replays and waiting --------------------------------------------------------------

    def _replay(self, row: CheckoutRow, *, replayed: bool = True) -> CheckoutResult:
        if row.order_id is None:
            raise InvalidStateError(f"checkout {row.id!r} has no order to replay")
        if not self._carts.transactional and row.step == CLOSING:
            self._close_cart(row)  # a crash came before it
        if replayed:
            self._m.count("checkouts_total", "replayed")
        return CheckoutResult(
            row.id,
            CheckoutStatus.COMPLETED,
            order=self._orders.get(row.order_id),
            replayed=replayed,
        )

    def _action_replay(self, row: CheckoutRow) -> CheckoutResult:
        payment = self._payments.payment(row.id)
        amount = self._total(json.loads(row.quote or "{}"))
        action = ActionRequired(
            operation=Operation.AUTHORIZE,
            reference=payment.reference or "",
            amount=amount,
            provider=payment.provider or "",
            action_type="three_d_secure",
        )
        return CheckoutResult(row.id, CheckoutStatus.ACTION_REQUIRED, action=action, replayed=True)

    def _close_cart(self, row: CheckoutRow) -> bool:
        """Close the cart of a completed attempt in a store outside the database (idempotent).

        Runs after the attempt's completion committed, and again on a replay or
        in ``recover()`` until the attempt's step says the cart was closed, so
        a crash between the two is mended. A cart merged or dropped meanwhile
        is left as it is; a store that is down leaves the cart frozen (it takes
        no changes) for the next replay or ``recover()``; the order stands
        either way. True when the cart is settled.
        """
        checkout_id = row.id
        hooks = self._hooks
        if hooks is not None:
            hooks("before", "close_cart", checkout_id)
        try:
            self._carts.complete(row.cart_id, stamp=row.cart_stamp)
        except (InvalidStateError, NotFoundError):
            pass  # merged or expired meanwhile, or dropped by its time to live
        except CommerceKitError:
            self._m.count("cart_closes_deferred_total")
            return False
        with contextlib.suppress(CommerceKitError):  # the next replay or recover() records it
            self._store.settle(checkout_id, CLOSING, "cart_closed")
        return True

    def _thaw_cart(self, row: CheckoutRow) -> bool:
        """Open again the cart of a failed attempt in a store outside the database.

        Only if it is still frozen and no later attempt of the cart froze it
        since (the cart's version is read first, and the thaw is a
        compare-and-set on it, so a freeze in between wins). True when settled.
        """
        checkout_id, cart_id = row.id, row.cart_id
        try:
            cart = self._carts.get(cart_id)
            if cart.status is CartStatus.FROZEN and row.of_cart(cart.stamp):
                latest = self._store.latest(cart_id)
                if latest is None or latest.id == checkout_id:
                    self._carts.thaw(cart_id, version=cart.version)
        except NotFoundError:
            pass  # dropped by its time to live: nothing to open
        except CommerceKitError:
            self._m.count("cart_closes_deferred_total")
            return False
        with contextlib.suppress(CommerceKitError):
            self._store.settle(checkout_id, THAWING, "cart_thawed")
        return True

    def _wait(self, checkout_id: str) -> CheckoutResult:
        deadline = time.monotonic() + self._wait_s
        while True:
            row = self._require(checkout_id)
            if row.status is CheckoutStatus.COMPLETED:
                return self._replay(row)
            if row.status is CheckoutStatus.ACTION_REQUIRED:
                return self._action_replay(row)
            if row.status is not CheckoutStatus.RUNNING:
                self._raise_outcome(row)
            if row.lease_until <= self._clock() or time.monotonic() >= deadline:
                raise CheckoutInProgressError(
                    f"checkout {checkout_id!r} is being completed by another worker; "
                    "retry shortly for its result",
                    retry_after_s=max(0.0, row.lease_until - self._clock()),
                )
            self._sleep(self._poll_s)

    def _raise_outcome(self, row: CheckoutRow) -> None:
        error = row.error or ""
        if error.startswith("sold_out:"):
            sku = error.partition(":")[2]
            raise OutOfStockError(f"{sku!r} sold out during checkout {row.id!r}", sku=sku)
        if error.startswith("declined:"):
            code = error.partition(":")[2]
            raise PaymentDeclinedError(
                f"the payment of checkout {row.id!r} was declined ({code})", decline_code=code
            )
        raise InvalidStateError(f"checkout {row.id!r} ended {row.status.value}: {error}")

    def _require(self, checkout_id: str) -> CheckoutRow:
        row = self._store.get(checkout_id)
        if row is None:
            raise NotFoundError(f"no checkout {checkout_id!r}")
        return row

    @staticmethod
    def _total(quote: dict[str, Any]) -> Money:
        return Money.from_minor(int(quote["total_minor"]), quote["currency"])
