"""The aggregate tables of the analytics store (SQLite, PostgreSQL, MySQL/MariaDB)."""

from __future__ import annotations

from typing import Any

import attrs
from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table

from commercekit.analytics._sql import ExactString, LongText

__all__ = ["Schema"]

_ID = 64
_NAME = 200


# Tables keyed by text are stored in their primary key's B-tree on SQLite (WITHOUT ROWID):
# an upsert touches one tree instead of a rowid table plus its key index.
_CLUSTERED: dict[str, Any] = {"sqlite_with_rowid": False}


def _big() -> BigInteger:
    return BigInteger()


@attrs.define
class Schema:
    """Every table, named ``<prefix><name>``, in one MetaData."""

    metadata: MetaData
    processed: Table
    dead_letters: Table
    funnel_events: Table
    funnel_progress: Table
    funnel_counts: Table
    revenue: Table
    product_revenue: Table
    product_counts: Table
    carts: Table
    searches: Table
    customer_weeks: Table
    item_customers: Table
    item_counts: Table
    co_counts: Table
    identities: Table
    writer: Table

    @classmethod
    def build(cls, metadata: MetaData, prefix: str) -> Schema:
        """Define the tables in *metadata*."""
        p = prefix
        long_text = LongText()
        return cls(
            metadata=metadata,
            processed=Table(
                f"{p}processed",
                metadata,
                Column("event_id", ExactString(_ID), primary_key=True),
                **_CLUSTERED,
            ),
            dead_letters=Table(
                f"{p}dead_letters",
                metadata,
                Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
                Column("handle", ExactString(_NAME), nullable=False),
                Column("event_id", ExactString(_ID), nullable=True),
                Column("reason", String(1000), nullable=False),
                Column("body", long_text, nullable=False),
                Column("at_ms", _big(), nullable=False),
            ),
            funnel_events=Table(
                f"{p}funnel_events",
                metadata,
                Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
                Column("funnel", ExactString(100), nullable=False),
                Column("customer", ExactString(_NAME), nullable=False),
                Column("step", Integer, nullable=False),
                Column("ts_ms", _big(), nullable=False),
                Index(f"ix_{p}funnel_events_who", "funnel", "customer"),
            ),
            funnel_progress=Table(
                f"{p}funnel_progress",
                metadata,
                Column("funnel", ExactString(100), primary_key=True),
                Column("customer", ExactString(_NAME), primary_key=True),
                Column("day", String(10), nullable=False),
                Column("entered_ms", _big(), nullable=False),
                Column("reached", Integer, nullable=False),
                Column("convert_ms", _big(), nullable=True),
                Index(f"ix_{p}funnel_progress_day", "funnel", "day", "reached", "convert_ms"),
                Index(f"ix_{p}funnel_progress_convert", "funnel", "reached", "convert_ms"),
                **_CLUSTERED,
            ),
            funnel_counts=Table(
                f"{p}funnel_counts",
                metadata,
                Column("funnel", ExactString(100), primary_key=True),
                Column("day", String(10), primary_key=True),
                Column("reached", Integer, primary_key=True),
                Column("n", _big(), nullable=False),
                **_CLUSTERED,
            ),
            revenue=Table(
                f"{p}revenue",
                metadata,
                Column("day", String(10), primary_key=True),
                Column("currency", String(3), primary_key=True),
                Column("orders", _big(), nullable=False),
                Column("gross_minor", _big(), nullable=False),
                Column("refunds", _big(), nullable=False),
                Column("refunded_minor", _big(), nullable=False),
                **_CLUSTERED,
            ),
            product_revenue=Table(
                f"{p}product_revenue",
                metadata,
                Column("day", String(10), primary_key=True),
                Column("product", ExactString(_NAME), primary_key=True),
                Column("currency", String(3), primary_key=True),
                Column("quantity", _big(), nullable=False),
                Column("revenue_minor", _big(), nullable=False),
                **_CLUSTERED,
            ),
            product_counts=Table(
                f"{p}product_counts",
                metadata,
                Column("day", String(10), primary_key=True),
                Column("product", ExactString(_NAME), primary_key=True),
                Column("kind", String(10), primary_key=True),
                Column("n", _big(), nullable=False),
                **_CLUSTERED,
            ),
            carts=Table(
                f"{p}carts",
                metadata,
                Column("customer", ExactString(_NAME), primary_key=True),
                Column("first_add_ms", _big(), nullable=True),
                Column("last_order_ms", _big(), nullable=True),
                **_CLUSTERED,
            ),
            searches=Table(
                f"{p}searches",
                metadata,
                Column("query", ExactString(_NAME), primary_key=True),
                Column("searches", _big(), nullable=False),
                Column("no_result", _big(), nullable=False),
                **_CLUSTERED,
            ),
            customer_weeks=Table(
                f"{p}customer_weeks",
                metadata,
                Column("customer", ExactString(_NAME), primary_key=True),
                Column("week", String(10), primary_key=True),
                **_CLUSTERED,
            ),
            item_customers=Table(
                f"{p}item_customers",
                metadata,
                Column("customer", ExactString(_NAME), primary_key=True),
                Column("product", ExactString(_NAME), primary_key=True),
                **_CLUSTERED,
            ),
            item_counts=Table(
                f"{p}item_counts",
                metadata,
                Column("product", ExactString(_NAME), primary_key=True),
                Column("n", _big(), nullable=False),
                **_CLUSTERED,
            ),
            co_counts=Table(
                f"{p}co_counts",
                metadata,
                Column("a", ExactString(_NAME), primary_key=True),
                Column("b", ExactString(_NAME), primary_key=True),
                Column("n", _big(), nullable=False),
                **_CLUSTERED,
            ),
            # The winning link of each linked id: the earliest Identify or Alias naming it
            # (by timestamp, then event id), so the winner never depends on arrival order.
            identities=Table(
                f"{p}identities",
                metadata,
                Column("source", ExactString(_NAME), primary_key=True),
                Column("person", ExactString(_NAME), nullable=False),
                Column("ts_ms", _big(), nullable=False),
                Column("event_id", ExactString(_ID), nullable=False),
                Index(f"ix_{p}identities_person", "person"),
                **_CLUSTERED,
            ),
            # One row that every batch updates first: concurrent batches take turns, so each
            # reads the per-person state (funnels, co-purchases, links) the last one left.
            writer=Table(
                f"{p}writer",
                metadata,
                Column("id", Integer, primary_key=True, autoincrement=False),
                Column("batches", _big(), nullable=False),
            ),
        )
