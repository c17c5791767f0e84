"""A shop's checkout on SQLite: search, stock, cart, a voucher, 3-D Secure, a decline, recovery.

Runs as it is, in a temporary folder, in a couple of seconds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from commercekit.commerce import Commerce, metadata
from commercekit.commerce.pricing import FlatShipping
from commercekit.errors import OutOfStockError, PaymentDeclinedError
from commercekit.money import Money
from commercekit.payments import Card, PaymentService, SandboxGateway, SqlAlchemyIdempotencyStore
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine

GOOD = Card("4242 4242 4242 4242", 12, 2035, cvv="123")
DECLINED = Card("4000 0000 0000 0002", 12, 2035, cvv="123")
THREE_DS = Card("4000 0000 0000 3220", 12, 2035, cvv="123")

with tempfile.TemporaryDirectory() as tmp:
    engine = sqlite_engine(Path(tmp) / "shop.db")
    db = Database(ReplicatedTopology(Node("primary", engine)))
    store = SqlAlchemyIdempotencyStore(engine)
    store.create_tables()
    gateway = SandboxGateway()
    shop = Commerce.from_database(
        db,
        payments=PaymentService(gateway, store),
        tax_rates={"DE": "0.19"},
        prices_include_tax=True,
        shipping=FlatShipping({"EUR": Money.of("4.90", "EUR")}, {"EUR": Money.of("50", "EUR")}),
    )
    db.create_all(metadata)

    shop.catalog.add_product("Tee", ["TEE-M", "TEE-L"], images=["tee/front.jpg"])
    shop.catalog.add_product("Mug", ["MUG"])
    for sku, price in (("TEE-M", "25.00"), ("TEE-L", "25.00"), ("MUG", "12.00")):
        shop.catalog.set_price(sku, Money.of(price, "EUR"))
    shop.inventory.set_stock("TEE-M", 5)
    shop.inventory.set_stock("TEE-L", 1)
    shop.inventory.set_stock("MUG", 20)
    shop.pricing.vouchers.create("WELCOME10", percent=10, max_uses=100)
    found = shop.catalog.list_products(text="tee", max_price=Money.of("30", "EUR"))
    print("search 'tee' up to 30 EUR:", [p.name for p in found.products])
    listed = [v.sku for p in found.products for v in p.variants]
    stock = shop.inventory.available_many(listed)  # one query for the whole page
    assert stock == {"TEE-L": 1, "TEE-M": 5}
    print("in stock on that page:", stock)

    cart = shop.carts.create("EUR", customer_id="ada")
    shop.carts.add(cart.id, "TEE-M", 2)
    shop.carts.add(cart.id, "MUG")
    shop.carts.set_voucher(cart.id, "WELCOME10")
    quote = shop.pricing.quote(shop.carts.get(cart.id).lines, cart.currency, region="DE",
                               voucher="WELCOME10")  # fmt: skip
    print(f"quote: {quote.subtotal} - {quote.discount} + shipping {quote.shipping} "
          f"= {quote.total} (VAT included: {quote.tax})")  # fmt: skip

    result = shop.checkout.place(cart.id, GOOD, region="DE")
    order = result.order
    assert order is not None
    print(f"order {order.number}: {order.total}, {order.payment_status.value}")
    again = shop.checkout.place(cart.id, GOOD, region="DE")  # a double click
    print(f"submitted again: replayed={again.replayed}, same order: {again.order == order}")
    print("TEE-M stock:", shop.inventory.level("TEE-M"))

    guest = shop.carts.create("EUR")
    shop.carts.add(guest.id, "TEE-L", 1)
    # a guest's analytics id goes into the order and its events
    paused = shop.checkout.place(guest.id, THREE_DS, region="DE", anonymous_id="anon-5d2e")
    assert paused.action is not None
    print("3-D Secure needed:", paused.action.action_type, "stock held:",
          shop.inventory.level("TEE-L").reserved)  # fmt: skip
    gateway.authenticate(paused.action.reference, success=True)  # the customer passes it
    done = shop.checkout.complete_action(paused.checkout_id)
    assert done.order is not None
    print("after the challenge:", done.order.number, done.order.payment_status.value,
          "guest:", done.order.anonymous_id)  # fmt: skip

    late = shop.carts.create("EUR")
    shop.carts.add(late.id, "TEE-L", 1)
    try:
        shop.checkout.place(late.id, GOOD, region="DE")
    except OutOfStockError as exc:
        print("sold out:", exc.sku)

    unlucky = shop.carts.create("EUR")
    shop.carts.add(unlucky.id, "MUG", 3)
    try:
        shop.checkout.place(unlucky.id, DECLINED, region="DE")
    except PaymentDeclinedError as exc:
        print("declined:", exc.decline_code, "- MUG reserved now:",
              shop.inventory.level("MUG").reserved)  # fmt: skip

    shop.orders.fulfil(order.id, {"TEE-M": 2, "MUG": 1})
    back = shop.orders.return_items(order.id, {"MUG": 1}, key="rma-1")
    print(f"returned a mug: refunded {back.refunded}, fulfilment {back.fulfilment_status.value}")
    print("order log:", [e.kind for e in shop.orders.events(order.id)])
    print("ada's orders:", [o.number for o in shop.orders.for_customer("ada").orders])
    print("recover() found nothing stalled:", shop.checkout.recover() == [])
    print("inventory invariants hold:", shop.inventory.verify().ok)
    engine.dispose()
