"""``Carts``: persisted carts with a version column, always writeable, mergeable.

Each write reads the cart row, applies the change to its :class:`CartState`
and writes it back with ``UPDATE ... WHERE id = :id AND version = :seen``. A
writer that lost the race reads again and reapplies its change (bounded
retries), so two app servers writing one cart never lose an add. Adding never
checks stock (that is the checkout's job); it checks the SKU exists when a
*sku_exists* callable (the catalog's) is given.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs
from sqlalchemy import bindparam, select, update

from commercekit.commerce._instruments import CommerceInstruments
from commercekit.commerce._shared import check_id, new_id, rowcount, wall_clock
from commercekit.errors import (
    ConflictError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    TransientError,
    UnknownSkuError,
)
from commercekit.metrics import Metrics
from commercekit.money import Currency, currency
from commercekit.repository import Database, UnitOfWork
from commercekit.typing import WallClock

from . import _tables as t
from ._crdt import CartState

__all__ = ["Cart", "CartStatus", "Carts"]


class CartStatus(enum.Enum):
    """A cart is open until it is completed (ordered), merged into another, or expires."""

    OPEN = "open"
    COMPLETED = "completed"
    MERGED = "merged"
    EXPIRED = "expired"


# Statements of the hot paths, built once (SQLAlchemy keys its cache once per statement).
_c = t.carts.c
_READ = select(_c.customer_id, _c.currency, _c.state, _c.version, _c.status, _c.voucher).where(
    _c.id == bindparam("cart_id")
)
_COMPLETE = (
    update(t.carts)
    .where(_c.id == bindparam("cart_id"), _c.status == CartStatus.OPEN.value)
    .values(status=CartStatus.COMPLETED.value, version=_c.version + 1, updated_at=bindparam("now"))
)


@attrs.frozen
class Cart:
    """A cart as stored: its lines (SKU -> quantity), currency, version and status."""

    id: str
    customer_id: str | None
    currency: Currency
    lines: dict[str, int]
    version: int
    status: CartStatus
    voucher: str | None
    state: CartState = attrs.field(repr=False)

    @property
    def empty(self) -> bool:
        """True when the cart has no lines."""
        return not self.lines


class Carts:
    """The cart service. See the module docstring."""

    def __init__(
        self,
        db: Database,
        *,
        sku_exists: Callable[[str], bool] | None = None,
        on_event: Callable[[str, dict[str, str | int]], object] | None = None,
        metrics: Metrics | CommerceInstruments | None = None,
        clock: WallClock = wall_clock,
        max_retries: int = 50,
    ) -> None:
        self._db = db
        self._sku_exists = sku_exists
        self._on_event = on_event
        self._m = (
            metrics if isinstance(metrics, CommerceInstruments) else CommerceInstruments(metrics)
        )
        self._clock = clock
        self._max_retries = max_retries

    def create(
        self,
        currency_code: Currency | str,
        *,
        customer_id: str | None = None,
        cart_id: str | None = None,
    ) -> Cart:
        """A new, empty, open cart in *currency_code* (for a customer, or a guest when None)."""
        unit = currency(currency_code) if isinstance(currency_code, str) else currency_code
        if customer_id is not None:
            check_id(customer_id, "customer_id")
        cid = check_id(cart_id, "cart_id") if cart_id is not None else new_id()
        now = self._clock()
        state = CartState()
        with self._db.unit_of_work() as uow:
            uow.session.execute(
                t.carts.insert().values(
                    id=cid,
                    customer_id=customer_id,
                    currency=unit.code,
                    state=state.to_json(),
                    voucher=None,
                    version=1,
                    status=CartStatus.OPEN.value,
                    created_at=now,
                    updated_at=now,
                )
            )
        return Cart(cid, customer_id, unit, {}, 1, CartStatus.OPEN, None, state)

    def get(self, cart_id: str, *, uow: UnitOfWork | None = None) -> Cart:
        """The cart, or :class:`NotFoundError` (read in *uow* when given)."""
        check_id(cart_id, "cart_id")
        if uow is not None:
            return self._read(uow, cart_id)
        return self._db.run(lambda u: self._read(u, cart_id), retry=True).value

    # -- changes ------------------------------------------------------------------------

    def add(self, cart_id: str, sku: str, qty: int = 1) -> Cart:
        """Add *qty* of *sku* to the cart."""
        self._check_sku(sku)
        cart = self._write(cart_id, "add", lambda s: s.add(sku, qty))
        self._emit("Product Added", cart, sku=sku, product_id=sku, quantity=qty)
        return cart

    def set_quantity(self, cart_id: str, sku: str, qty: int) -> Cart:
        """Set the quantity of *sku* (0 removes the line)."""
        if qty:
            self._check_sku(sku)
        return self._write(cart_id, "set", lambda s: s.set(sku, qty))

    def remove(self, cart_id: str, sku: str) -> Cart:
        """Remove the line of *sku* (a no-op when it is not there)."""
        cart = self._write(cart_id, "remove", lambda s: s.remove(sku))
        self._emit("Product Removed", cart, sku=sku, product_id=sku)
        return cart

    def set_voucher(self, cart_id: str, code: str | None) -> Cart:
        """Attach a voucher code to the cart (checked by pricing when the cart is priced)."""
        if code is not None:
            check_id(code, "voucher code")
        cart = self._write(cart_id, "voucher", lambda s: s, voucher=(code,))
        if code is not None:
            self._emit("Coupon Applied", cart, coupon_id=code)
        return cart

    def merge(self, source_id: str, into_id: str) -> Cart:
        """Merge cart *source_id* (a guest's) into *into_id* (the customer's); the source closes."""
        if source_id == into_id:
            raise InvalidInputError("a cart cannot be merged into itself")
        check_id(source_id, "cart_id")
        check_id(into_id, "cart_id")
        for _ in range(self._max_retries):
            with self._db.unit_of_work() as uow:
                source = self._read(uow, source_id)
                target = self._read(uow, into_id)
                if source.status is CartStatus.MERGED:
                    return target  # merged already: the same answer
                self._require_open(source)
                self._require_open(target)
                if source.currency != target.currency:
                    raise InvalidInputError(
                        f"cart {source_id!r} is in {source.currency.code}, "
                        f"{into_id!r} in {target.currency.code}"
                    )
                merged = target.state.merge(source.state).compact()
                if self._cas(uow, target, merged, None) and self._cas(
                    uow, source, source.state, None, status=CartStatus.MERGED
                ):
                    self._m.count("cart_writes_total", "merge")
                    return self._read(uow, into_id)
                uow.rollback()
            self._m.count("cart_write_retries_total")
        raise ConflictError(f"carts {source_id!r} and {into_id!r} kept changing; retry")

    def complete(self, cart_id: str, *, uow: UnitOfWork | None = None) -> bool:
        """Mark an open cart completed (ordered); False when it was completed already."""
        check_id(cart_id, "cart_id")

        def work(u: UnitOfWork) -> bool:
            params = {"cart_id": cart_id, "now": self._clock()}
            moved = rowcount(u.session.execute(_COMPLETE, params))
            if moved:
                return True
            cart = self._read(u, cart_id)
            if cart.status is CartStatus.COMPLETED:
                return False
            raise InvalidStateError(f"cart {cart_id!r} is {cart.status.value}, not open")

        return work(uow) if uow is not None else self._db.run(work, retry=True).value

    def expire_abandoned(self, *, idle_s: float, limit: int = 1000) -> int:
        """Expire open carts not written for *idle_s* seconds; return how many."""
        if idle_s <= 0:
            raise InvalidInputError("idle_s must be positive")
        c = t.carts.c
        cutoff = self._clock() - idle_s
        with self._db.unit_of_work() as uow:
            ids = list(
                uow.session.execute(
                    select(c.id)
                    .where(c.status == CartStatus.OPEN.value, c.updated_at < cutoff)
                    .limit(limit)
                ).scalars()
            )
            done = 0
            for cid in ids:
                done += rowcount(
                    uow.session.execute(
                        update(t.carts)
                        .where(
                            c.id == cid,
                            c.status == CartStatus.OPEN.value,
                            c.updated_at < cutoff,
                        )
                        .values(status=CartStatus.EXPIRED.value, version=c.version + 1)
                    )
                )
        return done

    def _emit(self, name: str, cart: Cart, **properties: str | int) -> None:
        """A browsing event through the metrics hook's channel (never blocks, may drop)."""
        if self._on_event is not None:
            self._on_event(name, {"cart_id": cart.id, **properties})

    # -- internals ----------------------------------------------------------------------

    def _check_sku(self, sku: str) -> None:
        check_id(sku, "sku")
        if self._sku_exists is not None and not self._sku_exists(sku):
            raise UnknownSkuError(f"no product variant has SKU {sku!r}")

    def _write(
        self,
        cart_id: str,
        operation: str,
        change: Callable[[CartState], CartState],
        *,
        voucher: tuple[str | None] | None = None,
    ) -> Cart:
        check_id(cart_id, "cart_id")
        for _ in range(self._max_retries):
            try:
                with self._db.unit_of_work() as uow:
                    cart = self._read(uow, cart_id)
                    self._require_open(cart)
                    state = change(cart.state).compact()  # see CartState.compact
                    if self._cas(uow, cart, state, voucher):
                        self._m.count("cart_writes_total", operation)
                        return Cart(
                            cart.id,
                            cart.customer_id,
                            cart.currency,
                            state.lines(),
                            cart.version + 1,
                            cart.status,
                            cart.voucher if voucher is None else voucher[0],
                            state,
                        )
            except TransientError:
                pass  # the database was busy or aborted it: read again and reapply
            self._m.count("cart_write_retries_total")
        raise ConflictError(f"cart {cart_id!r} kept changing under {self._max_retries} writes")

    def _cas(
        self,
        uow: UnitOfWork,
        cart: Cart,
        state: CartState,
        voucher: tuple[str | None] | None,
        *,
        status: CartStatus = CartStatus.OPEN,
    ) -> bool:
        c = t.carts.c
        values: dict[str, object] = {
            "state": state.to_json(),
            "version": cart.version + 1,
            "status": status.value,
            "updated_at": self._clock(),
        }
        if voucher is not None:
            values["voucher"] = voucher[0]
        return bool(
            rowcount(
                uow.session.execute(
                    update(t.carts)
                    .where(c.id == cart.id, c.version == cart.version)
                    .values(**values)
                )
            )
        )

    @staticmethod
    def _require_open(cart: Cart) -> None:
        if cart.status is not CartStatus.OPEN:
            raise InvalidStateError(f"cart {cart.id!r} is {cart.status.value}: start a new cart")

    @staticmethod
    def _read(uow: UnitOfWork, cart_id: str) -> Cart:
        row = uow.session.execute(_READ, {"cart_id": cart_id}).first()
        if row is None:
            raise NotFoundError(f"no cart {cart_id!r}")
        state = CartState.from_json(row[2])
        return Cart(
            cart_id,
            row[0],
            currency(row[1]),
            state.lines(),
            int(row[3]),
            CartStatus(row[4]),
            row[5],
            state,
        )
