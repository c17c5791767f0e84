"""``Carts``: always-writeable, mergeable carts over a :class:`CartStore` (SQL by default).

Each write reads the cart, applies the change to its :class:`CartState` and
writes it back only if nobody wrote it meanwhile (the store's compare-and-set
on the cart's version). A writer that lost the race reads again and reapplies
its change (bounded retries), so two app servers writing one cart never lose
an add. Adding never checks stock (that is the checkout's job); it checks the
SKU exists when a *product_of* callable (the catalog's ``product_of``: the
SKU's product id, None for a SKU not sold) or a *sku_exists* one is given.
Product Added and Product Removed name the product in ``product_id`` (from
*product_of*; the SKU without it) and the variant in ``sku``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

import attrs

from commercekit.commerce._instruments import CommerceInstruments
from commercekit.commerce._shared import check_id, new_id, wall_clock
from commercekit.errors import (
    CartFrozenError,
    InvalidInputError,
    InvalidStateError,
    UnknownSkuError,
)
from commercekit.metrics import Metrics
from commercekit.money import Currency, currency
from commercekit.repository import Database, UnitOfWork
from commercekit.typing import WallClock

from ._crdt import CartState
from ._sql import SqlCartStore
from ._store import CartRecord, CartStatus, CartStore

__all__ = ["Cart", "CartStatus", "Carts"]


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
    stamp: str = attrs.field(default="", repr=False)
    """Tells this cart from an earlier one under the same id (see ``CartRecord.stamp``)."""

    @property
    def empty(self) -> bool:
        """True when the cart has no lines."""
        return not self.lines


def _cart(record: CartRecord) -> Cart:
    return Cart(
        record.id,
        record.customer_id,
        currency(record.currency),
        record.state.lines(),
        record.version,
        record.status,
        record.voucher,
        record.state,
        record.stamp,
    )


class Carts:
    """The cart service. See the module docstring.

    *store* keeps the carts (default: :class:`SqlCartStore` on *db*, the
    ``ck_carts`` table); :class:`RedisCartStore` keeps them in Redis with an
    expiry refreshed on every write. The rules are the same on both.
    """

    def __init__(
        self,
        db: Database | None = None,
        *,
        store: CartStore | None = None,
        sku_exists: Callable[[str], bool] | None = None,
        product_of: Callable[[str], str | None] | None = None,
        on_event: Callable[[str, dict[str, str | int]], object] | None = None,
        metrics: Metrics | CommerceInstruments | None = None,
        clock: WallClock = wall_clock,
        max_retries: int = 50,
    ) -> None:
        if store is None:
            if db is None:
                raise InvalidInputError("Carts needs a database or a cart store")
            store = SqlCartStore(db)
        self._store = store
        self._sku_exists = sku_exists
        self._product_of = product_of
        self._on_event = on_event
        self._m = (
            metrics if isinstance(metrics, CommerceInstruments) else CommerceInstruments(metrics)
        )
        self._clock = clock
        self._max_retries = max_retries

    @property
    def store(self) -> CartStore:
        """Where the carts are kept."""
        return self._store

    @property
    def transactional(self) -> bool:
        """True when the carts live in the commerce database (see ``CartStore.transactional``)."""
        return self._store.transactional

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
        record = CartRecord(
            id=cid,
            customer_id=customer_id,
            currency=unit.code,
            state=CartState(),
            voucher=None,
            version=1,
            status=CartStatus.OPEN,
            created_at=now,
            updated_at=now,
            # the SQL store never frees an id (the row stays), so it needs no stamp
            stamp="" if self._store.transactional else secrets.token_hex(8),
        )
        self._store.insert(record)
        return _cart(record)

    def get(self, cart_id: str, *, uow: UnitOfWork | None = None) -> Cart:
        """The cart, or :class:`NotFoundError` (read in *uow* when given and the store is SQL)."""
        check_id(cart_id, "cart_id")
        return _cart(self._store.get(cart_id, uow=uow))

    # -- changes ------------------------------------------------------------------------

    def add(self, cart_id: str, sku: str, qty: int = 1) -> Cart:
        """Add *qty* of *sku* to the cart."""
        product = self._check_sku(sku)
        cart = self._write(cart_id, "add", lambda s: s.add(sku, qty))
        self._emit("Product Added", cart, sku=sku, product_id=product, quantity=qty)
        return cart

    def set_quantity(self, cart_id: str, sku: str, qty: int) -> Cart:
        """Set the quantity of *sku* (0 removes the line)."""
        if qty:
            self._check_sku(sku)
        return self._write(cart_id, "set", lambda s: s.set(sku, qty))

    def remove(self, cart_id: str, sku: str) -> Cart:
        """Remove the line of *sku* (a no-op when it is not there).

        The product for Product Removed is looked up before the write: a
        catalog that fails refuses the remove rather than report a failure
        for a line that was removed.
        """
        product = sku
        if self._on_event is not None and self._product_of is not None:
            check_id(sku, "sku")
            product = self._product_of(sku) or sku  # a SKU no longer sold: its SKU
        cart = self._write(cart_id, "remove", lambda s: s.remove(sku))
        self._emit("Product Removed", cart, sku=sku, product_id=product)
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
        calls = 0
        wrote = True

        def change(read: tuple[CartRecord, ...]) -> Sequence[CartRecord] | None:
            nonlocal calls, wrote
            calls += 1
            source, target = read
            if source.status is CartStatus.MERGED:
                wrote = False
                return None  # merged already: the same answer
            self._require_open(source)
            self._require_open(target)
            if source.currency != target.currency:
                raise InvalidInputError(
                    f"cart {source_id!r} is in {source.currency}, {into_id!r} in {target.currency}"
                )
            now = self._clock()
            merged = target.state.merge(source.state).compact()
            return (
                attrs.evolve(
                    source, version=source.version + 1, status=CartStatus.MERGED, updated_at=now
                ),
                attrs.evolve(target, state=merged, version=target.version + 1, updated_at=now),
            )

        try:
            _, target = self._store.update(
                (source_id, into_id), change, max_retries=self._max_retries
            )
        finally:
            self._retried(calls)
        if wrote:
            self._m.count("cart_writes_total", "merge")
        return _cart(target)

    def complete(
        self, cart_id: str, *, uow: UnitOfWork | None = None, stamp: str | None = None
    ) -> bool:
        """Mark an open or frozen cart completed (ordered); False when it was completed already.

        With *stamp*, only the cart of that stamp (see ``Cart.stamp``): a new cart
        made under the id since is left alone (False).
        """
        check_id(cart_id, "cart_id")
        return self._store.complete(cart_id, self._clock(), uow=uow, stamp=stamp)

    def freeze(self, cart_id: str, *, version: int, uow: UnitOfWork | None = None) -> bool:
        """Freeze the cart for a checkout, if it is still at *version*; False when it changed.

        A frozen cart refuses every change (:class:`CartFrozenError`) until
        :meth:`complete` closes it or :meth:`thaw` opens it again. Freezing a
        frozen cart again (at its version) is allowed: a checkout that resumes.
        """
        check_id(cart_id, "cart_id")
        return self._store.freeze(cart_id, version, self._clock(), uow=uow)

    def thaw(
        self, cart_id: str, *, version: int | None = None, uow: UnitOfWork | None = None
    ) -> bool:
        """Open a frozen cart again (only at *version*, when given); False if it was not frozen."""
        check_id(cart_id, "cart_id")
        return self._store.thaw(cart_id, self._clock(), version=version, uow=uow)

    def expire_abandoned(self, *, idle_s: float, limit: int = 1000) -> int:
        """Expire open carts not written for *idle_s* seconds; return how many."""
        if idle_s <= 0:
            raise InvalidInputError("idle_s must be positive")
        return self._store.expire_idle(self._clock() - idle_s, limit=limit)

    def _emit(self, name: str, cart: Cart, **properties: str | int) -> None:
        """A browsing event through the metrics hook's channel (never blocks, may drop)."""
        if self._on_event is not None:
            self._on_event(name, {"cart_id": cart.id, **properties})

    # -- internals ----------------------------------------------------------------------

    def _check_sku(self, sku: str) -> str:
        """Refuse a SKU the catalog does not sell; its product id (the SKU when unknown)."""
        check_id(sku, "sku")
        if self._product_of is not None:
            product = self._product_of(sku)
            if product is None:
                raise UnknownSkuError(f"no product variant has SKU {sku!r}")
            return product
        if self._sku_exists is not None and not self._sku_exists(sku):
            raise UnknownSkuError(f"no product variant has SKU {sku!r}")
        return sku

    def _write(
        self,
        cart_id: str,
        operation: str,
        change: Callable[[CartState], CartState],
        *,
        voucher: tuple[str | None] | None = None,
    ) -> Cart:
        check_id(cart_id, "cart_id")
        calls = 0

        def apply(read: tuple[CartRecord, ...]) -> Sequence[CartRecord]:
            nonlocal calls
            calls += 1
            cart = read[0]
            self._require_open(cart)
            state = change(cart.state).compact()  # see CartState.compact
            return (
                CartRecord(
                    id=cart.id,
                    customer_id=cart.customer_id,
                    currency=cart.currency,
                    state=state,
                    voucher=cart.voucher if voucher is None else voucher[0],
                    version=cart.version + 1,
                    status=cart.status,
                    created_at=cart.created_at,
                    updated_at=self._clock(),
                    stamp=cart.stamp,
                ),
            )

        try:
            (written,) = self._store.update((cart_id,), apply, max_retries=self._max_retries)
        finally:
            self._retried(calls)
        self._m.count("cart_writes_total", operation)
        return _cart(written)

    def _retried(self, calls: int) -> None:
        if calls > 1:
            self._m.count("cart_write_retries_total", amount=calls - 1)

    @staticmethod
    def _require_open(cart: CartRecord) -> None:
        if cart.status is CartStatus.FROZEN:
            raise CartFrozenError(
                f"cart {cart.id!r} is being checked out and takes no changes until the "
                "checkout ends (ordered: start a new cart; failed: it opens again)"
            )
        if cart.status is not CartStatus.OPEN:
            raise InvalidStateError(f"cart {cart.id!r} is {cart.status.value}: start a new cart")
