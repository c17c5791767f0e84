"""The cart service's table: one row per cart, its lines as a mergeable state, a version column."""

from __future__ import annotations

from sqlalchemy import Column, Double, Index, Integer, String, Table, Text

from commercekit.commerce._shared import metadata

__all__ = ["carts"]

carts = Table(
    "ck_carts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("state", Text, nullable=False),
    Column("voucher", String(64), nullable=True),
    Column("version", Integer, nullable=False),
    # open -> completed | merged | expired; open -> frozen (a checkout) -> completed | open
    Column("status", String(16), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Index("ix_ck_carts_customer", "customer_id"),
    Index("ix_ck_carts_status_updated", "status", "updated_at"),
)
