"""The commerce domain: catalog, pricing, carts, inventory, orders and the checkout saga.

Each service is a sub-package that owns its tables (``ck_*`` on
:data:`metadata`) and talks to the others only through their public
interfaces. :class:`Commerce` wires them all over one database::

    shop = Commerce.from_database(db, payments=payments, tax_rates={"DE": "0.19"})
    db.create_all(metadata)
    result = shop.checkout.place(cart_id, card, region="DE")

See ``docs/commerce.md``.
"""

from ._events import (
    BROWSING_EVENTS,
    MONEY_EVENTS,
    OUTBOX,
    OUTBOX_TOPIC,
    BusinessEvents,
    event_slug,
    money_text,
)
from ._root import Commerce
from ._shared import MAX_QUANTITY, metadata

__all__ = [
    "BROWSING_EVENTS",
    "MAX_QUANTITY",
    "MONEY_EVENTS",
    "OUTBOX",
    "OUTBOX_TOPIC",
    "BusinessEvents",
    "Commerce",
    "event_slug",
    "metadata",
    "money_text",
]
