"""The catalog service's tables: products, variants (unique SKUs), price lists."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from commercekit.commerce._shared import metadata

__all__ = ["prices", "products", "variants"]

# The generic Text takes a collation, which MySQL's compiler renders as the
# dialect's TEXT would: the same DDL, without loading a dialect at import time.
_MATCHED_TEXT = Text().with_variant(Text(collation="utf8mb4_bin"), "mariadb", "mysql")

products = Table(
    "ck_products",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("attributes", Text, nullable=False),  # JSON object of str -> str
    Column("images", Text, nullable=False),  # JSON list of logical asset names
    Column("active", Boolean, nullable=False),
    Column("created_at", Double, nullable=False),
    # listing filters (see _search.py): case-folded name and attribute values; the
    # attribute pairs as ["name","value"]; binary collation on MariaDB (exact matches)
    Column("search_text", _MATCHED_TEXT, nullable=True),
    Column("attribute_index", _MATCHED_TEXT, nullable=True),
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
