"""The catalog service's tables: products, variants (unique SKUs), price lists."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from commercekit.commerce._shared import metadata

__all__ = ["prices", "products", "variants"]

products = Table(
    "ck_products",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("attributes", Text, nullable=False),  # JSON object of str -> str
    Column("images", Text, nullable=False),  # JSON list of logical asset names
    Column("active", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_ck_products_active_id", "active", "id"),
)

variants = Table(
    "ck_variants",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("product_id", String(64), ForeignKey("ck_products.id"), nullable=False),
    Column("attributes", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Index("ix_ck_variants_product", "product_id"),
)

prices = Table(
    "ck_prices",
    metadata,
    Column("sku", String(64), ForeignKey("ck_variants.sku"), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    PrimaryKeyConstraint("sku", "channel", "currency"),
)
