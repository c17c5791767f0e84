"""The embedded pipeline end to end: outbox, relay, JSON-lines log, consumer, reports."""

from __future__ import annotations

from pathlib import Path

from commercekit.analytics import (
    AnalyticsConsumer,
    AnalyticsStore,
    JsonLinesLog,
    LogRecord,
    OutboxRelay,
    Reports,
    SqlEventLog,
    record,
)
from commercekit.metrics import InMemoryMetrics
from commercekit.repository import Database, Node, Outbox, ReplicatedTopology, sqlite_engine

from ._history import FUNNEL, assert_matches, generate, malformed_bodies, reference


def _db(path: Path) -> Database:
    return Database(ReplicatedTopology(Node("primary", sqlite_engine(path))))


def test_history_through_outbox_relay_and_jsonl_log_matches_duckdb(tmp_path: Path) -> None:
    events = generate(2000, seed=3)
    shop = _db(tmp_path / "shop.db")
    outbox = Outbox()
    shop.create_all(outbox.metadata)
    for i in range(0, len(events), 250):
        with shop.unit_of_work() as uow:
            for e in events[i : i + 250]:
                record(uow, outbox, e)
    log = JsonLinesLog(tmp_path / "events.jsonl")
    relay = OutboxRelay(shop, outbox, log, batch_size=400)
    while relay.run_once():
        pass
    # A relay that crashed before marking sent publishes a batch again, same ids.
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in events[:500]])
    log.publish([LogRecord(f"m{i}", b) for i, b in enumerate(malformed_bodies())])
    store = AnalyticsStore(_db(tmp_path / "analytics.db"), funnels=[FUNNEL])
    store.create()
    metrics = InMemoryMetrics()
    consumer = AnalyticsConsumer(log, store, batch_size=300, poll_timeout_s=0.0, metrics=metrics)
    assert consumer.run(idle_exit_s=0.0) == len(events)
    reports = Reports(store)
    assert_matches(reports, reference(events))
    parked = reports.dead_letters()
    assert len(parked) == len(malformed_bodies())
    assert all(p["reason"] for p in parked)
    # A restarted consumer reads from the committed offset: nothing is applied twice.
    again = AnalyticsConsumer(JsonLinesLog(tmp_path / "events.jsonl"), store, poll_timeout_s=0.0)
    assert again.run(idle_exit_s=0.0) == 0
    assert_matches(reports, reference(events))


def test_sql_event_log_redelivers_unacknowledged_messages(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "log.db")
    log = SqlEventLog(engine)
    log.create()
    log.publish([LogRecord(f"e{i}", b"{}") for i in range(10)])
    first = log.consume(4)
    log.acknowledge(first[:2])
    restarted = SqlEventLog(engine)
    assert [d.event_id for d in restarted.consume(100)] == [f"e{i}" for i in range(2, 10)]


def test_commerce_events_from_the_channel_keep_their_segment_name_and_id(tmp_path: Path) -> None:
    """The commerce layer emits ``ecommerce.product_viewed`` with the Segment name in ``event``
    and its id in ``event_id`` (docs/metrics.md): through LogSink they count as that event,
    and a batch the channel hands the sink twice (after a sink error) counts once."""
    from commercekit.analytics import LogSink, from_metrics_event
    from commercekit.metrics import Event
    from commercekit.repository import new_event_id

    ids = [new_event_id() for _ in range(3)]
    events = [
        Event(
            "ecommerce.product_viewed",
            {"event": "Product Viewed", "event_id": i, "product_id": "tee", "customer_id": f"c{n}"},
        )
        for n, i in enumerate(ids)
    ]
    wrapped = from_metrics_event(events[0])
    assert (wrapped.name, wrapped.event_id, wrapped.customer_id) == ("Product Viewed", ids[0], "c0")
    assert dict(wrapped.properties) == {"product_id": "tee"}
    plain = from_metrics_event(Event("cart.item_added", {"sku": "TEE"}))
    assert (plain.name, plain.anonymous_id, dict(plain.properties)) == (
        "cart.item_added",
        "system",
        {"sku": "TEE"},
    )
    log = JsonLinesLog(tmp_path / "events.jsonl")
    sink = LogSink(log)
    sink(events)
    sink(events[1:])  # the channel tried a batch again after the sink raised
    store = AnalyticsStore(_db(tmp_path / "analytics.db"), funnels=[FUNNEL])
    store.create()
    assert AnalyticsConsumer(log, store, poll_timeout_s=0.0).run(idle_exit_s=0.0) == 3
    assert Reports(store).top_products("viewed")[0].count == 3
