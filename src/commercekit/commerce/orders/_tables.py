"""The order service's tables: orders (three status axes), their lines, their event log."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from commercekit.commerce._shared import metadata

__all__ = ["order_events", "order_lines", "orders"]

orders = Table(
    "ck_orders",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("number", String(16), nullable=False, unique=True),
    Column("checkout_key", String(128), nullable=False, unique=True),
    Column("customer_id", String(64), nullable=True),
    # the guest's analytics id (Segment's anonymousId), when the checkout was given one
    Column("anonymous_id", String(64), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("status", String(24), nullable=False),
    Column("payment_status", String(24), nullable=False),
    Column("fulfilment_status", String(24), nullable=False),
    Column("subtotal_minor", BigInteger, nullable=False),
    Column("discount_minor", BigInteger, nullable=False),
    Column("shipping_minor", BigInteger, nullable=False),
    Column("tax_minor", BigInteger, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("captured_minor", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False),
    Column("payment_id", String(128), nullable=False),
    Column("reservation_id", String(64), nullable=False),
    Column("voucher", String(64), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    # refunds decided and not yet paid back (or declined): Orders.recover_refunds' work
    Column("refunds_pending", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_ck_orders_customer", "customer_id", "created_at"),
    Index("ix_ck_orders_refunds_pending", "refunds_pending"),
    # Orders.recent's keyset order: a page is an index range, not a sort of the table
    Index("ix_ck_orders_created", "created_at", "id"),
)

order_lines = Table(
    "ck_order_lines",
    metadata,
    Column("order_id", String(64), ForeignKey("ck_orders.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    Column("discount_minor", BigInteger, nullable=False),
    Column("tax_minor", BigInteger, nullable=False),
    Column("gross_minor", BigInteger, nullable=False),
    Column("fulfilled", Integer, nullable=False),
    Column("returned", Integer, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False),
    PrimaryKeyConstraint("order_id", "line_no"),
)

order_events = Table(
    "ck_order_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("order_id", String(64), ForeignKey("ck_orders.id"), nullable=False),
    Column("kind", String(48), nullable=False),
    Column("data", Text, nullable=False),
    Column("at", Double, nullable=False),
    Index("ix_ck_order_events_order", "order_id", "id"),
)
