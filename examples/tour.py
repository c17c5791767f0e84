"""A short tour of commercekit as it stands: money, errors, metrics and events.

This is what `make demo` runs. Each section is a few lines you could paste
into a shop of your own.
"""

from __future__ import annotations

import decimal

from commercekit.errors import CommerceKitError
from commercekit.metrics import Event, EventChannel, InMemoryMetrics
from commercekit.money import Money, currency


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
for attempt in (
    lambda: Money.parse("1.005", "USD"),
    lambda: Money.of(0.1, "USD"),  # type: ignore[arg-type]
    lambda: Money.of("1", "USD") + Money.of("1", "EUR"),
    lambda: Money.of("1", "XYZ"),
):
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
