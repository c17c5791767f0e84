"""The consumer never stops on a bad message: a batch the store refuses is applied one by one."""

from __future__ import annotations

from pathlib import Path

from commercekit.analytics import (
    AnalyticsConsumer,
    AnalyticsEvent,
    AnalyticsStore,
    JsonLinesLog,
    LogRecord,
    Reports,
    product_viewed,
)
from commercekit.money import Money
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine


def test_a_poison_message_is_parked_and_the_rest_applied(tmp_path: Path) -> None:
    log = JsonLinesLog(tmp_path / "events.jsonl")
    good = [product_viewed("tee", Money.of("1.00", "EUR"), customer_id=f"c{i}") for i in range(5)]
    too_long = AnalyticsEvent("Product Viewed", {"product_id": "x" * 300}, customer_id="c9")
    records = [LogRecord(e.event_id, e.to_bytes()) for e in good[:2]]
    records.append(LogRecord(too_long.event_id, too_long.to_bytes()))
    records += [LogRecord(e.event_id, e.to_bytes()) for e in good[2:]]
    log.publish(records)
    store = AnalyticsStore(
        Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db"))))
    )
    store.create()
    assert AnalyticsConsumer(log, store, poll_timeout_s=0).run(idle_exit_s=0) == 5
    reports = Reports(store)
    assert reports.top_products("viewed")[0].count == 5
    (parked,) = reports.dead_letters()
    assert parked["event_id"] == too_long.event_id
    assert "product_id" in parked["reason"]


def test_park_is_idempotent(tmp_path: Path) -> None:
    from commercekit.analytics import Delivery

    store = AnalyticsStore(
        Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db"))))
    )
    store.create()
    d = Delivery("7", b"\xff\xfe not utf-8", "e-7")
    store.park(d, "refused")
    store.park(d, "refused")
    assert len(Reports(store).dead_letters()) == 1


def test_a_batch_the_database_refuses_is_applied_one_by_one(tmp_path: Path) -> None:
    from collections.abc import Sequence

    from commercekit.analytics import ApplyResult, Delivery
    from commercekit.errors import RepositoryError

    poison = product_viewed("tee", Money.of("1.00", "EUR"), customer_id="poison")

    class RefusingStore(AnalyticsStore):
        """Stands in for a database that refuses one row (a constraint the checks missed)."""

        def apply(self, deliveries: Sequence[Delivery]) -> ApplyResult:
            if any(d.event_id == poison.event_id for d in deliveries):
                raise RepositoryError("value too long for type character varying(200)")
            return super().apply(deliveries)

    log = JsonLinesLog(tmp_path / "events.jsonl")
    good = [product_viewed("tee", Money.of("1.00", "EUR"), customer_id=f"c{i}") for i in range(4)]
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in [*good[:2], poison, *good[2:]]])
    store = RefusingStore(Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db")))))
    store.create()
    assert AnalyticsConsumer(log, store, poll_timeout_s=0).run(idle_exit_s=0) == 4
    (parked,) = Reports(store).dead_letters()
    assert parked["event_id"] == poison.event_id
    assert "refused" in parked["reason"]
