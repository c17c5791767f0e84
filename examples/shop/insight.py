"""The demo report's analytics: the checkout funnel as ``commercekit.analytics`` counts it.

The app servers publish the browsing events (Product Viewed, Product Added,
Checkout Started) to the event log; the orders' Order Completed goes through
the transactional outbox, which the analytics consumer relays. The consumer
applies both to the aggregates; :class:`~commercekit.analytics.Reports` reads
them. The figures here are those reports, after waiting (bounded) for the
consumer to catch up with the orders in the shop's database.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from commercekit.analytics import FunnelReport, Reports
from commercekit.commerce.orders import Order
from commercekit.errors import CommerceKitError
from shop.root import Shop
from shop.services import FUNNEL

__all__ = ["analytics_lines", "funnel_line"]


def _all_orders(shop: Shop) -> list[Order]:
    """Every order in the shop's database (the demo's shop is its crowd's alone)."""
    orders: list[Order] = []
    after: str | None = None
    while True:
        page = shop.commerce.orders.recent(200, after=after)
        orders.extend(page.orders)
        if page.next_after is None:
            return orders
        after = page.next_after


def _analytics_orders(reports: Reports) -> int:
    return sum(day.orders for day in reports.revenue())


def funnel_line(report: FunnelReport) -> str:
    """The funnel's steps with unique customers, step and overall conversion, median time."""
    total = report.total
    steps = []
    for k, (step, count) in enumerate(zip(report.steps, total.counts, strict=True)):
        share = f" ({total.step_conversion[k]:.0%})" if k and total.step_conversion else ""
        steps.append(f"{step} {count}{share}")
    median = total.median_convert_s
    took = "-" if median is None else f"{median:.1f} s"
    return (
        f"{report.funnel}, unique customers (commercekit.analytics): "
        + " -> ".join(steps)
        + f"; overall {total.overall_conversion:.0%}, median time to convert {took}"
    )


def analytics_lines(
    shop: Shop, *, timeout_s: float = 30.0, sleep: Callable[[float], None] = time.sleep
) -> list[str]:
    """The report's ``analytics`` and ``funnel`` lines, once the consumer has caught up.

    Caught up: the analytics count every order the database holds, and the
    funnel read twice half a second apart is the same (the browsing events,
    which the app servers publish every half second, are in). After
    *timeout_s* the figures are printed as they are, and the line says so.
    """
    started = time.monotonic()
    previous: FunnelReport | None = None
    orders: list[Order] = []
    counted, caught_up, waited = 0, False, 0.0
    funnel: FunnelReport | None = None
    while True:
        try:
            orders = _all_orders(shop)
            counted = _analytics_orders(shop.reports)
            funnel = shop.reports.funnel(FUNNEL.name)
        except CommerceKitError as exc:  # the analytics store not made yet, a node away
            funnel, counted = None, 0
            error = type(exc).__name__
        else:
            error = ""
        waited = time.monotonic() - started
        if funnel is not None and counted == len(orders) and funnel == previous:
            caught_up = True
            break
        if waited >= timeout_s:
            break
        previous = funnel
        sleep(0.5)
    guests = len({o.anonymous_id for o in orders if o.customer_id is None and o.anonymous_id})
    state = (
        f"caught up in {waited:.1f} s"
        if caught_up
        else f"NOT caught up after {waited:.0f} s{f' ({error})' if error else ''}"
    )
    lines = [
        f"analytics     {state}: {counted} of the {len(orders)} orders in the database "
        f"counted ({guests} by guests; a buyer who signed in is one person with their "
        "browsing before the sign-in)",
    ]
    if funnel is not None:
        lines.append("funnel        " + funnel_line(funnel))
    return lines
