"""The checkout service's tables: one row per checkout attempt (the saga), and its step log."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from commercekit.commerce._shared import metadata

__all__ = ["checkout_steps", "checkouts"]

checkouts = Table(
    "ck_checkouts",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("cart_id", String(64), nullable=False),
    # the cart's stamp (CartRecord.stamp): a new cart under a freed id is not this one
    Column("cart_stamp", String(32), nullable=True),
    Column("attempt", Integer, nullable=False),
    # running -> action_required -> running ...; running -> completed | failed | compensated
    Column("status", String(24), nullable=False),
    Column("step", String(24), nullable=False),
    Column("lease_owner", String(40), nullable=True),
    Column("lease_until", Double, nullable=False),
    Column("customer_id", String(64), nullable=True),
    # the guest's analytics id, carried into the order and its events
    Column("anonymous_id", String(64), nullable=True),
    Column("region", String(64), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("quote", Text, nullable=True),
    Column("order_id", String(64), nullable=True),
    Column("error", String(200), nullable=True),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("cart_id", "attempt", name="uq_ck_checkouts_cart_attempt"),
    Index("ix_ck_checkouts_status_lease", "status", "lease_until"),
    # recover() finds ended attempts whose cart (outside the database) is not settled yet
    Index("ix_ck_checkouts_status_step", "status", "step"),
)

checkout_steps = Table(
    "ck_checkout_steps",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("checkout_id", String(80), nullable=False),
    Column("step", String(24), nullable=False),
    Column("outcome", String(24), nullable=False),
    Column("detail", String(200), nullable=True),
    Column("at", Double, nullable=False),
    Index("ix_ck_checkout_steps_checkout", "checkout_id", "id"),
)
