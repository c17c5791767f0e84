"""The storefront's use cases, shared by the HTML pages and the JSON API.

Each is an ``async`` method that runs the commerce services (synchronous) in
the thread pool and emits its analytics events. *who* identifies the shopper
for analytics and ownership: a signed-in customer id or the session id.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from commercekit.analytics import (
    LineItem,
    checkout_started,
    identify,
    product_added,
    product_removed,
    product_viewed,
    products_searched,
)
from commercekit.commerce.cart import Cart, CartStatus
from commercekit.commerce.checkout import CheckoutResult, CheckoutStatus
from commercekit.commerce.orders import Order
from commercekit.errors import (
    CartFrozenError,
    CommerceKitError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    PaymentDeclinedError,
)
from commercekit.money import Money
from commercekit.payments import Card
from shop.root import Listing, Shop

__all__ = ["DECLINE_TEXT", "CartView", "Checkout3DS", "Session", "Storefront"]

DECLINE_TEXT = {
    "card_declined": "Your bank declined the card. Try another card or contact your bank.",
    "insufficient_funds": "The card has insufficient funds for this order. Try another card.",
    "expired_card": "The card has expired. Check the expiry date or use another card.",
    "incorrect_cvc": "The security code (CVC) is wrong. Check the 3 digits on the back.",
    "processing_error": "The bank could not process the payment. Please try again shortly.",
    "authentication_failed": "The 3-D Secure check was not passed, so the bank refused "
    "the payment. Nothing was charged.",
}


def decline_text(exc: PaymentDeclinedError) -> str:
    """What a declined customer reads: the reason and what to do next."""
    code = exc.decline_code or ""
    return DECLINE_TEXT.get(
        code, "The payment was declined. Nothing was charged; try another card."
    )


@dataclass
class Session:
    """What the shop keeps per visitor (in the signed session cookie)."""

    data: dict[str, Any]

    @property
    def sid(self) -> str:
        return str(self.data["sid"])

    @property
    def customer_id(self) -> str | None:
        value = self.data.get("customer")
        return None if value is None else str(value)

    @property
    def owner(self) -> str:
        return self.customer_id or f"guest:{self.sid}"

    def ident(self) -> dict[str, str]:
        cid = self.customer_id
        return {"customer_id": cid} if cid else {"anonymous_id": self.sid}


@dataclass(frozen=True)
class CartLine:
    sku: str
    qty: int
    name: str
    product_id: str
    unit: Money
    total: Money
    image: str


@dataclass(frozen=True)
class CartView:
    """The session's open cart, priced; *checkouts*: its checkouts waiting for 3-D Secure."""

    cart_id: str | None
    lines: tuple[CartLine, ...]
    subtotal: Money
    shipping: Money
    tax: Money
    total: Money
    checkouts: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return sum(line.qty for line in self.lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "cart_id": self.cart_id,
            "lines": [
                {
                    "sku": x.sku,
                    "qty": x.qty,
                    "name": x.name,
                    "product_id": x.product_id,
                    "unit_price": str(x.unit.amount),
                    "total": str(x.total.amount),
                }
                for x in self.lines
            ],
            "subtotal": str(self.subtotal.amount),
            "shipping": str(self.shipping.amount),
            "tax": str(self.tax.amount),
            "total": str(self.total.amount),
            "currency": self.total.currency.code,
            "checkout_in_progress": [
                {"checkout_id": c, "challenge": f"/api/checkout/3ds/{c}"} for c in self.checkouts
            ],
        }


@dataclass(frozen=True)
class Checkout3DS:
    """A checkout paused for the customer's 3-D Secure challenge."""

    checkout_id: str
    reference: str
    amount: Money


class Storefront:
    """The shop's use cases over one :class:`Shop`."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.c = shop.commerce

    # -- browsing --------------------------------------------------------------------------

    async def search(
        self,
        s: Session,
        *,
        query: str = "",
        category: str = "",
        in_stock: bool = False,
        max_price: str = "",
        after: str | None = None,
    ) -> tuple[list[Listing], str | None]:
        """(items of the page after *after*, cursor of the next page or None); filters compose."""
        limit = None
        if max_price:
            try:
                limit = Money.of(max_price, self.shop.settings.currency)
            except Exception as exc:
                raise InvalidInputError("max_price is a decimal amount such as 25.00") from exc
        found, next_after = await run_in_threadpool(
            lambda: self.shop.catalog.page(
                text=query,
                category=category,
                max_price=limit,
                in_stock=in_stock,
                after=after or None,
                limit=self.shop.settings.page_size,
            )
        )
        if query:
            self.shop.track(products_searched(query, results=len(found), **s.ident()))
        return found, next_after

    async def product(self, s: Session, product_id: str) -> tuple[Listing, dict[str, int]]:
        """The product and each variant's stock; emits Product Viewed."""
        listing = await run_in_threadpool(self.shop.catalog.get, product_id)
        self.shop.track(product_viewed(product_id, listing.price, **s.ident()))
        return listing, listing.stock

    # -- cart ------------------------------------------------------------------------------

    def _cart_id(self, s: Session, *, create: bool) -> str | None:
        cart_id = s.data.get("cart")
        if cart_id is not None:
            return str(cart_id)
        if not create:
            return None
        cart = self.c.carts.create(self.shop.settings.currency, customer_id=s.customer_id)
        s.data["cart"] = cart.id
        return cart.id

    def _change(self, s: Session, cart_id: str, change: Callable[[str], object]) -> None:
        """Run *change* on the session's cart; a frozen one leaves it for a new open cart.

        A checkout freezes its cart until it ends (while a 3-D Secure challenge
        is open, for instance). As Oscar does with a frozen basket, the change
        goes into a new open cart that becomes the session's, and the checkout
        goes on with the lines it froze; should it fail, :meth:`complete_3ds`
        merges the new cart back into the one it opens again.
        """
        try:
            change(cart_id)
        except CartFrozenError:
            fresh = self.c.carts.create(self.shop.settings.currency, customer_id=s.customer_id)
            s.data["cart"] = fresh.id
            change(fresh.id)

    def _listing_for(self, sku: str) -> Listing:
        variant = self.c.catalog.variant(sku)
        return self.shop.catalog.get(variant.product_id)

    async def add(self, s: Session, sku: str, qty: int = 1) -> CartView:
        def work() -> Listing:
            listing = self._listing_for(sku)
            cart_id = self._cart_id(s, create=True)
            assert cart_id is not None
            self._change(s, cart_id, lambda c: self.c.carts.add(c, sku, qty))
            return listing

        listing = await run_in_threadpool(work)
        self.shop.track(
            product_added(listing.id, listing.price, qty, cart_id=s.data["cart"], **s.ident())
        )
        return await self.cart(s)

    async def set_quantity(self, s: Session, sku: str, qty: int) -> CartView:
        cart_id = s.data.get("cart")
        if cart_id is None:
            raise NotFoundError("the cart is empty")
        if qty <= 0:
            return await self.remove(s, sku)
        await run_in_threadpool(
            self._change, s, str(cart_id), lambda c: self.c.carts.set_quantity(c, sku, qty)
        )
        return await self.cart(s)

    async def remove(self, s: Session, sku: str) -> CartView:
        cart_id = s.data.get("cart")
        if cart_id is None:
            raise NotFoundError("the cart is empty")

        def work() -> tuple[Listing | None, int]:
            # Unlike an add, a remove never starts a new cart (see _change): the line
            # is in the frozen cart (the checkout's, refused) or in none (nothing to do).
            cart = self.c.carts.get(str(cart_id))
            before = cart.lines.get(sku, 0)
            # The listing (for Product Removed) is read before the write: a catalog
            # that fails refuses the remove rather than report one that was made.
            listing: Listing | None = None
            try:
                listing = self._listing_for(sku)
            except NotFoundError:
                if not before:
                    raise
                # a line whose product the shop no longer lists: removed all the same
            frozen = cart.status is CartStatus.FROZEN
            if not frozen:
                try:
                    self.c.carts.remove(cart.id, sku)
                except CartFrozenError:
                    frozen = True  # a checkout froze it meanwhile
            if frozen and before:
                raise CartFrozenError(
                    "this item is in a checkout waiting for its 3-D Secure challenge:"
                    " answer the challenge (a failed one gives the cart back) to change it"
                )
            return listing, 0 if frozen else before

        listing, before = await run_in_threadpool(work)
        if before and listing is not None:
            self.shop.track(product_removed(listing.id, listing.price, before, **s.ident()))
        return await self.cart(s)

    async def cart(self, s: Session) -> CartView:
        return await run_in_threadpool(self._cart_view, s)

    def _waiting(self, s: Session) -> tuple[str, ...]:
        """The session's checkouts still waiting for their 3-D Secure challenge.

        A challenge left unanswered ends when its window runs out
        (``Checkout.recover()`` opens its cart again): that cart comes back
        to the session as after a failed challenge (:meth:`_restore`), and
        the challenge is forgotten.
        """
        pending = dict(s.data.get("3ds", {}))
        held = dict(s.data.get("held", {}))
        waiting = []
        for checkout_id in list(pending):
            try:
                status = self.c.checkout.status(checkout_id)
            except NotFoundError:
                status = None
            if status is CheckoutStatus.ACTION_REQUIRED or status is CheckoutStatus.RUNNING:
                if status is CheckoutStatus.ACTION_REQUIRED:
                    waiting.append(str(checkout_id))
                continue  # (running: being answered now, its request carries it on)
            frozen = held.pop(checkout_id, None)
            pending.pop(checkout_id, None)
            if frozen is not None and status in (CheckoutStatus.FAILED, CheckoutStatus.COMPENSATED):
                self._restore(s, str(frozen))
        if len(pending) != len(s.data.get("3ds", {})):
            s.data["3ds"], s.data["held"] = pending, held
        self._unfrozen(s)
        return tuple(waiting)

    def _unfrozen(self, s: Session) -> None:
        """Guest carts a sign-in could not merge (a checkout of theirs was running).

        A checkout that failed opened its cart again: the cart goes into the
        customer's (:meth:`_restore`); one still running is kept for later, and
        one that ordered (or merged since) is forgotten.
        """
        unmerged = list(s.data.get("unmerged", []))
        if not unmerged:
            return
        keep = []
        for cart_id in unmerged:
            try:
                status = self.c.carts.get(str(cart_id)).status
            except NotFoundError:
                continue
            if status is CartStatus.FROZEN:
                keep.append(cart_id)
            elif status is CartStatus.OPEN:
                self._restore(s, str(cart_id))
        if keep != unmerged:
            s.data["unmerged"] = keep

    def _cart_view(self, s: Session) -> CartView:
        settings = self.shop.settings
        zero = Money.of("0", settings.currency)
        waiting = self._waiting(s)
        cart_id = s.data.get("cart")
        cart: Cart | None = None
        if cart_id is not None:
            try:
                cart = self.c.carts.get(str(cart_id))
            except NotFoundError:
                s.data.pop("cart", None)
        if cart is None or cart.empty or cart.status is not CartStatus.OPEN:
            # a frozen cart (a checkout running, or a 3-D Secure challenge) stays the
            # session's until a change goes into a new one (see _change)
            if cart is not None and cart.status not in (CartStatus.OPEN, CartStatus.FROZEN):
                s.data.pop("cart", None)
            cid = None if cart is None else cart.id
            return CartView(cid, (), zero, zero, zero, zero, waiting)
        quote = self.c.pricing.quote(cart.lines, cart.currency, region=settings.region)
        lines = []
        for sku, qty in sorted(cart.lines.items()):
            listing = self._listing_for(sku)
            unit = self.c.catalog.price(sku, cart.currency)
            lines.append(
                CartLine(
                    sku,
                    qty,
                    listing.product.name,
                    listing.id,
                    unit,
                    unit * qty,
                    listing.images[0] if listing.images else "",
                )
            )
        return CartView(
            cart.id, tuple(lines), quote.subtotal, quote.shipping, quote.tax, quote.total, waiting
        )

    # -- signing in ------------------------------------------------------------------------

    async def sign_in(self, s: Session, email: str, password: str) -> bool:
        """Sign in (or open an account); the guest cart merges into the customer's.

        Emits Segment's ``identify`` (the customer id and the session's
        anonymous id), so the analytics count the visitor's browsing before
        the sign-in and their orders after it as one person's.
        """
        if "@" not in email or len(password) < 6:
            raise InvalidInputError("enter an email address and a password of 6+ characters")
        customer_id, created = await self.shop.sign_in(email, password)
        guest_cart = s.data.get("cart")

        def merge() -> str | None:
            into = self.c.carts.create(self.shop.settings.currency, customer_id=customer_id)
            if guest_cart is not None:
                try:
                    self.c.carts.merge(str(guest_cart), into.id)
                except CartFrozenError:
                    # frozen by a checkout still running: merged should it fail (_unfrozen)
                    s.data["unmerged"] = [*s.data.get("unmerged", []), str(guest_cart)]
                except (NotFoundError, InvalidStateError):
                    pass  # gone or ordered: nothing to merge
            return into.id

        s.data["customer"] = customer_id
        s.data["email"] = email.strip().lower()
        s.data["cart"] = await run_in_threadpool(merge)
        self.shop.track(identify(customer_id, s.sid))
        return created

    # -- checkout --------------------------------------------------------------------------

    async def checkout(
        self, s: Session, card: Card, address: dict[str, str]
    ) -> CheckoutResult | Checkout3DS:
        """Place the order; a 3-D Secure card returns the challenge to show."""
        cart_id = s.data.get("cart")
        if cart_id is None:
            raise InvalidInputError("the cart is empty: add something first")
        view = await self.cart(s)
        if view.lines:
            self.shop.track(
                checkout_started(
                    str(cart_id),
                    view.total,
                    [LineItem(x.product_id, x.unit, x.qty) for x in view.lines],
                    **s.ident(),
                )
            )
        try:
            result: CheckoutResult = await run_in_threadpool(
                lambda: self.c.checkout.place(
                    str(cart_id),
                    card,
                    region=self.shop.settings.region,
                    return_url="/checkout/3ds",
                    # A guest's order events carry the id its browsing events did, so the
                    # funnel and cart abandonment join them to the order.
                    anonymous_id=None if s.customer_id else s.sid,
                )
            )
        except CommerceKitError:
            # The checkout opened its cart again. The session (a cookie) is left as it
            # was when unchanged: a sign-in from another tab meanwhile answered with a
            # newer one, which merges the cart once it is open (_unfrozen).
            await run_in_threadpool(self._restore, s, str(cart_id))
            raise
        s.data["address"] = address
        if result.action is not None:
            pending = dict(s.data.get("3ds", {}))
            pending[result.checkout_id] = result.action.reference
            s.data["3ds"] = pending
            held = dict(s.data.get("held", {}))  # the cart each challenge's checkout froze
            held[result.checkout_id] = str(cart_id)
            s.data["held"] = held
            return Checkout3DS(result.checkout_id, result.action.reference, result.action.amount)
        await self._placed(s, result.order, str(cart_id))
        return result

    async def complete_3ds(self, s: Session, checkout_id: str, passed: bool) -> CheckoutResult:
        """Answer the challenge as the customer did, then carry the checkout on."""
        pending = dict(s.data.get("3ds", {}))
        held = dict(s.data.get("held", {}))
        reference = pending.get(checkout_id)
        if reference is None:
            raise NotFoundError("no 3-D Secure challenge is waiting for this checkout")
        frozen = held.get(checkout_id)

        def work() -> CheckoutResult:
            # Answered already (a second click): carry on with the first answer.
            with contextlib.suppress(InvalidStateError):
                self.shop.gateway.authenticate(reference, success=passed)
            return self.c.checkout.complete_action(checkout_id)

        try:
            result = await run_in_threadpool(work)
        except CommerceKitError:
            if frozen is not None:
                await run_in_threadpool(self._restore, s, str(frozen))
            raise
        finally:
            pending.pop(checkout_id, None)
            s.data["3ds"] = pending
            held.pop(checkout_id, None)
            s.data["held"] = held
        await self._placed(s, result.order, None if frozen is None else str(frozen))
        return result

    def _restore(self, s: Session, cart_id: str) -> None:
        """After a failed checkout, its cart (open again) is the session's once more,
        with the lines of any cart started meanwhile merged in (Oscar's
        ``restore_frozen_basket``). A cart still frozen is left as it is.

        A visitor who signed in meanwhile has a cart of the customer's: the
        frozen cart (a guest's) goes into it instead, so the next order is the
        customer's, not a guest cart's with nobody's name on it."""
        try:
            cart = self.c.carts.get(cart_id)
        except NotFoundError:
            return
        if cart.status is not CartStatus.OPEN:
            return
        current = s.data.get("cart")
        if s.customer_id is not None and cart.customer_id != s.customer_id:
            if current is None:
                mine = self.c.carts.create(cart.currency, customer_id=s.customer_id)
                current = s.data["cart"] = mine.id
            with contextlib.suppress(NotFoundError, InvalidStateError):
                self.c.carts.merge(cart_id, str(current))
            return
        if current is not None and str(current) != cart_id:
            # gone or ordered meanwhile: nothing to merge
            with contextlib.suppress(NotFoundError, InvalidStateError):
                self.c.carts.merge(str(current), cart_id)
        if current is None or str(current) != cart_id:
            s.data["cart"] = cart_id  # (left unwritten when it is so already)

    async def _placed(self, s: Session, order: Order | None, cart_id: str | None) -> None:
        """The order of the checkout of *cart_id* is placed: that cart is no longer the
        session's (a cart started while its 3-D Secure challenge was open stays)."""
        if order is None:
            return
        if cart_id is None or str(s.data.get("cart")) == cart_id:
            s.data.pop("cart", None)
        # A guest's orders are found again through the session (the order carries its
        # anonymous id); a customer's through Orders.for_customer.
        mine = list(s.data.get("orders", []))[-9:]
        s.data["orders"] = [*mine, order.id]

    # -- orders ----------------------------------------------------------------------------

    @staticmethod
    def _owns(s: Session, order: Order) -> bool:
        cid = s.customer_id
        return (cid is not None and order.customer_id == cid) or order.anonymous_id == s.sid

    async def order(self, s: Session, order_id: str) -> Order:
        """An order the shopper owns (NotFoundError otherwise: no probing of others')."""
        order = await run_in_threadpool(self.c.orders.get, order_id)
        if not self._owns(s, order):
            raise NotFoundError(f"no order {order_id!r} here")
        return order

    async def history(self, s: Session) -> list[Order]:
        """The customer's latest orders, newest first, with this session's guest orders."""

        def work() -> list[Order]:
            cid = s.customer_id
            found = list(self.c.orders.for_customer(cid, limit=20).orders) if cid else []
            seen = {o.id for o in found}
            for oid in reversed(s.data.get("orders", [])):
                if oid in seen:
                    continue
                with contextlib.suppress(NotFoundError):
                    order = self.c.orders.get(str(oid))
                    if self._owns(s, order):
                        found.append(order)
            return found

        return await run_in_threadpool(work)
