"""Analytics on the embedded defaults: outbox, relay, JSON-lines log, consumer, reports.

Orders and their events commit together (the outbox); a relay moves the
events to a JSON-lines event log; the consumer applies them exactly once to
aggregates in SQLite; the reports render as JSON.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from commercekit.analytics import (
    AnalyticsConsumer,
    AnalyticsStore,
    FunnelSpec,
    JsonLinesLog,
    LineItem,
    OutboxRelay,
    Reports,
    order_completed,
    product_added,
    product_viewed,
    record,
)
from commercekit.money import Money
from commercekit.repository import Database, Node, Outbox, ReplicatedTopology, sqlite_engine

folder = Path(tempfile.mkdtemp())
shop = Database(ReplicatedTopology(Node("primary", sqlite_engine(folder / "shop.db"))))
outbox = Outbox()
shop.create_all(outbox.metadata)

t = 1_767_225_600_000  # 2026-01-01
tee, mug = Money.of("20.00", "EUR"), Money.of("8.50", "EUR")
for n in range(1, 6):
    who = f"c{n}"
    with shop.unit_of_work() as uow:  # the shop's own writes would go here too
        record(uow, outbox, product_viewed("tee", tee, timestamp_ms=t, customer_id=who))
        if n <= 3:
            record(uow, outbox, product_added("tee", tee, timestamp_ms=t + 60_000, customer_id=who))
        if n <= 2:
            items = [LineItem("tee", tee), LineItem("mug", mug, 2)]
            total = tee + mug * 2
            record(
                uow,
                outbox,
                order_completed(f"o{n}", total, items, timestamp_ms=t + 300_000, customer_id=who),
            )
    t += 3_600_000

log = JsonLinesLog(folder / "events.jsonl")
relay = OutboxRelay(shop, outbox, log)
while relay.run_once():
    pass

funnel = FunnelSpec("buy", ("Product Viewed", "Product Added", "Order Completed"), window_s=3600)
store = AnalyticsStore(
    Database(ReplicatedTopology(Node("primary", sqlite_engine(folder / "analytics.db")))),
    funnels=[funnel],
)
store.create()
applied = AnalyticsConsumer(log, store, poll_timeout_s=0).run(idle_exit_s=0)
# A restarted consumer resumes at the committed offset: nothing is applied twice.
applied_again = AnalyticsConsumer(log, store, poll_timeout_s=0).run(idle_exit_s=0)

reports = Reports(store)
report = reports.funnel("buy")
print(f"applied {applied} events, then {applied_again} on a second pass")
print("funnel counts per step:", report.total.counts, "conversion:", report.total.conversion)
assert report.total.counts == (5, 3, 2)
print("revenue:", json.dumps([r.to_json() for r in reports.revenue()]))
print("also bought with tee:", [r.product for r in reports.also_bought("tee")])
