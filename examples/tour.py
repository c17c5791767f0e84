"""A short tour of commercekit as it stands: every part, a few lines each.

This is what `make demo` runs. Each section is a few lines you could paste
into a shop of your own.
"""

from __future__ import annotations

import asyncio
import decimal
from collections.abc import Callable

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from commercekit.balancer import CappedRingBalancer, MaglevBalancer
from commercekit.cdn import EdgeCache, MemoryStore, MockOrigin, Response
from commercekit.errors import CommerceKitError
from commercekit.metrics import Event, EventChannel, InMemoryMetrics
from commercekit.money import Money, currency
from commercekit.payments import Card, InMemoryIdempotencyStore, PaymentService, SandboxGateway
from commercekit.repository import Database, Node, ReplicatedTopology, Versioned, sqlite_engine


def section(title: str) -> None:
    print(f"\n== {title} ==")


section("Money is exact")
price = Money.of("19.99", "USD")
basket = price * 3 + Money.of("4.50", "USD")
print(f"3 x {price} + 4.50 USD shipping = {basket}")
print("split between 3 friends:", ", ".join(map(str, basket.split(3))))
print("allocated 70/20/10:", ", ".join(map(str, basket.allocate([7, 2, 1]))))
for code in ("JPY", "KWD", "CLF"):
    unit = currency(code)
    print(f"{code} has {unit.exponent} decimal places: {Money.of('1234', code)}")
vat = basket.multiply(decimal.Decimal("0.19"), rounding=decimal.ROUND_HALF_EVEN)
print(f"19% VAT on {basket}, rounded half-even: {vat}")

section("Bad input gets a typed error that says how to fix it")
attempts: tuple[Callable[[], object], ...] = (
    lambda: Money.parse("1.005", "USD"),
    lambda: Money.of(0.1, "USD"),  # type: ignore[arg-type]
    lambda: Money.of("1", "USD") + Money.of("1", "EUR"),
    lambda: Money.of("1", "XYZ"),
)
for attempt in attempts:
    try:
        attempt()
    except CommerceKitError as exc:
        builtin = next(b for b in type(exc).__mro__ if b.__module__ == "builtins")
        print(f"{type(exc).__name__} (a {builtin.__name__}): {exc}")

section("Metrics: created once, one call on the hot path")
metrics = InMemoryMetrics()
orders = metrics.counter("commercekit_demo_orders_total", description="Orders placed.")
checkout = metrics.histogram("commercekit_demo_checkout_seconds", description="Checkout time.")
for ms in (120, 80, 95, 310, 101, 99, 87, 2400):
    orders.inc()
    checkout.record(ms / 1000)
dist = metrics.distribution("commercekit_demo_checkout_seconds")
print(
    f"{metrics.value('commercekit_demo_orders_total'):.0f} orders; checkout p50 "
    f"{dist.quantile(0.5) * 1000:.0f} ms, p99 {dist.quantile(0.99) * 1000:.0f} ms"
)

section("Business events: never block the request")
delivered: list[Event] = []
with EventChannel(delivered.extend, metrics=metrics) as channel:
    channel.emit(Event("product.viewed", {"sku": "TEE-M"}))
    channel.emit(Event("cart.item_added", {"sku": "TEE-M", "qty": 2}))
    channel.emit(Event("order.placed", {"amount_minor": basket.amount_minor, "currency": "USD"}))
print("delivered:", ", ".join(event.name for event in delivered))
print("emitted:", metrics.value("commercekit_metrics_events_emitted_total"))

section("Balancer: sticky picks, health as an overlay")
web = MaglevBalancer([f"10.0.0.{i}:8080" for i in range(1, 5)], name="web")
sessions = [f"session-{i}" for i in range(1_000)]
before = {s: web.pick(s) for s in sessions}
web.mark_down("10.0.0.2:8080")
moved = sum(web.pick(s) != before[s] for s in sessions)
print(f"10.0.0.2 down: {moved} of {len(sessions)} sessions moved, all of them its own")
web.mark_up("10.0.0.2:8080")
print("back up, every session where it was:", all(web.pick(s) == before[s] for s in sessions))

# A cache fleet that grows: the capped ring moves only about the newcomer's share.
caches = CappedRingBalancer([f"cache-{i}:11211" for i in range(8)], table_bits=15, name="cache")
urls = [f"/img/{i}.jpg" for i in range(2_000)]
cached_on = {u: caches.pick(u) for u in urls}
caches.add("cache-8:11211")
moved = sum(caches.pick(u) != cached_on[u] for u in urls)
print(f"one cache added to 8: {moved} of {len(urls)} URLs moved (ideal about {len(urls) // 9})")


class Base(DeclarativeBase):
    pass


class Customer(Versioned, Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))


section("Repository: units of work, versions, consistency tokens")
db = Database(ReplicatedTopology(Node("primary", sqlite_engine())))
db.create_all(Base.metadata)
with db.unit_of_work() as uow:
    uow.repository(Customer).add(Customer(id=1, name="Ada"))
print("token for read-your-writes:", uow.token)
print("read back:", db.repository(Customer).require(1, token=uow.token).name)
db.close()

section("Payments: exactly once, whatever the retries")
payments = PaymentService(SandboxGateway(), InMemoryIdempotencyStore())
card = Card("4242 4242 4242 4242", 12, 2030, cvv="123")
print("card shows as", card.masked)
print("authorize:", payments.authorize("order-1", basket, card).status.value)
print("capture:", payments.capture("order-1", idempotency_key="capture-order-1").status.value)
again = payments.capture("order-1", idempotency_key="capture-order-1")  # a client's retry
print("the same capture again is a replay:", again.status.value)
print("captured in all:", payments.payment("order-1").captured_minor, "minor units")


async def edge_demo() -> None:
    origin = MockOrigin(
        lambda request: Response(200, {"cache-control": "public, max-age=60"}, b"a shoe")
    )
    async with EdgeCache(origin, MemoryStore(1024 * 1024)) as edge:
        first = await edge.get("https://img.shop.example/shoe.jpg")
        second = await edge.get("https://img.shop.example/shoe.jpg")
        print("first:", first.outcome.value, "then:", second.outcome.value)


section("CDN: an edge cache in front of an origin")
asyncio.run(edge_demo())


section("Commerce: a checkout that never oversells or charges twice")
from commercekit.commerce import Commerce, metadata  # noqa: E402
from commercekit.errors import OutOfStockError  # noqa: E402

shop_db = Database(ReplicatedTopology(Node("primary", sqlite_engine())))
shop = Commerce.from_database(
    shop_db,
    payments=PaymentService(SandboxGateway(), InMemoryIdempotencyStore()),
    tax_rates={"DE": "0.19"},
    prices_include_tax=True,
)
shop_db.create_all(metadata)
shop.catalog.add_product("Sneaker", ["SNEAKER-42"])
shop.catalog.set_price("SNEAKER-42", Money.of("89.00", "EUR"))
shop.inventory.set_stock("SNEAKER-42", 1)  # the last pair
first_cart, second_cart = shop.carts.create("EUR"), shop.carts.create("EUR")
for cart_id in (first_cart.id, second_cart.id):
    shop.carts.add(cart_id, "SNEAKER-42")
placed = shop.checkout.place(first_cart.id, card, region="DE")
assert placed.order is not None
print(f"order {placed.order.number}: {placed.order.total} incl. {placed.order.tax} VAT, "
      f"{placed.order.payment_status.value}")  # fmt: skip
print("submitted twice, one order:", shop.checkout.place(first_cart.id, card, region="DE").replayed)
try:
    shop.checkout.place(second_cart.id, card, region="DE")
except OutOfStockError as exc:
    print("the second buyer is told it sold out:", exc.sku)
print("stock invariants hold:", shop.inventory.verify().ok)
shop_db.close()


section("Analytics: a funnel counted exactly once through an event log")
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from commercekit.analytics import (  # noqa: E402
    AnalyticsConsumer,
    AnalyticsStore,
    FunnelSpec,
    JsonLinesLog,
    OutboxRelay,
    Reports,
    product_added,
    product_viewed,
    record,
)
from commercekit.repository import Outbox  # noqa: E402

events_db = Database(ReplicatedTopology(Node("primary", sqlite_engine())))
outbox = Outbox()
events_db.create_all(outbox.metadata)
tee = Money.of("20.00", "EUR")
with events_db.unit_of_work() as uow:  # events commit with the change they describe
    for n in range(4):
        record(uow, outbox, product_viewed("TEE", tee, customer_id=f"c{n}", timestamp_ms=n))
        if n % 2 == 0:
            record(uow, outbox, product_added("TEE", tee, customer_id=f"c{n}", timestamp_ms=n + 9))
log = JsonLinesLog(Path(tempfile.mkdtemp()) / "events.jsonl")
while OutboxRelay(events_db, outbox, log).run_once():
    pass
store = AnalyticsStore(
    Database(ReplicatedTopology(Node("primary", sqlite_engine()))),
    funnels=[FunnelSpec("cart", ("Product Viewed", "Product Added"), window_s=3600)],
)
store.create()
AnalyticsConsumer(log, store, poll_timeout_s=0).run(idle_exit_s=0)
funnel = Reports(store).funnel("cart").total
print("customers per step:", funnel.counts, "conversion:", funnel.conversion)
