"""``Commerce``: the composition root that wires every service for applications that want all."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from commercekit.metrics import Metrics, NullMetrics
from commercekit.payments import PaymentService
from commercekit.repository import Database, Outbox
from commercekit.typing import WallClock

from ._events import OUTBOX, BusinessEvents
from ._instruments import CommerceInstruments
from ._shared import wall_clock
from .cart import Carts, CartStore
from .catalog import Catalog
from .checkout import Checkout, FaultHook
from .inventory import Inventory
from .orders import Orders
from .pricing import Pricing, ShippingRule

__all__ = ["Commerce"]


class Commerce:
    """Every commerce service over one database, wired through public interfaces only.

    Build it with :meth:`from_database`; the services are attributes
    (``catalog``, ``pricing``, ``carts``, ``inventory``, ``orders``,
    ``checkout``, ``events``). Nothing connects until the first call.
    """

    def __init__(
        self,
        *,
        db: Database,
        catalog: Catalog,
        pricing: Pricing,
        carts: Carts,
        inventory: Inventory,
        orders: Orders,
        checkout: Checkout,
        events: BusinessEvents,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.pricing = pricing
        self.carts = carts
        self.inventory = inventory
        self.orders = orders
        self.checkout = checkout
        self.events = events

    @classmethod
    def from_database(
        cls,
        db: Database,
        *,
        payments: PaymentService,
        metrics: Metrics | None = None,
        tax_rates: Mapping[str, Decimal | str] | None = None,
        prices_include_tax: bool = False,
        shipping: ShippingRule | None = None,
        outbox: Outbox | None = None,
        clock: WallClock = wall_clock,
        capture: str = "now",
        lease_s: float = 60.0,
        reservation_ttl_s: float = 1200.0,
        action_timeout_s: float = 900.0,
        wait_s: float = 30.0,
        hooks: FaultHook | None = None,
        cart_store: CartStore | None = None,
    ) -> Commerce:
        """Wire every service over *db*, taking payments through *payments*.

        *tax_rates* maps regions to rates (default: one region ``"default"``
        at 0). The money events go to *outbox* (default: an
        :class:`Outbox` whose table is on :data:`metadata`, so ``create_all``
        makes it). The carts live in *cart_store* (default: the ``ck_carts``
        table on *db*; a :class:`~commercekit.commerce.cart.RedisCartStore`
        keeps them in Redis).
        """
        backend = metrics if metrics is not None else NullMetrics()
        m = CommerceInstruments(backend)
        events = BusinessEvents(backend, outbox if outbox is not None else OUTBOX)
        catalog = Catalog(db, clock=clock)
        inventory = Inventory(db, metrics=m, clock=clock, reservation_ttl_s=reservation_ttl_s)
        carts = Carts(
            db,
            store=cart_store,
            product_of=catalog.product_of,
            on_event=events.browse,
            metrics=m,
            clock=clock,
        )
        pricing = Pricing(
            db,
            Pricing.lookup_from(catalog.prices),
            tax_rates=tax_rates if tax_rates is not None else {"default": "0"},
            prices_include_tax=prices_include_tax,
            shipping=shipping,
            metrics=m,
            clock=clock,
        )
        orders = Orders(
            db,
            inventory=inventory,
            payments=payments,
            vouchers=pricing.vouchers,
            events=events,
            metrics=m,
            clock=clock,
        )
        checkout = Checkout(
            db,
            carts=carts,
            pricing=pricing,
            inventory=inventory,
            orders=orders,
            payments=payments,
            events=events,
            metrics=m,
            clock=clock,
            capture=capture,
            lease_s=lease_s,
            reservation_ttl_s=reservation_ttl_s,
            action_timeout_s=action_timeout_s,
            wait_s=wait_s,
            hooks=hooks,
        )
        return cls(
            db=db,
            catalog=catalog,
            pricing=pricing,
            carts=carts,
            inventory=inventory,
            orders=orders,
            checkout=checkout,
            events=events,
        )
