"""A guest's anonymous id on checkouts and orders; the catalog's listing-filter columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 04:30:00.000000
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from commercekit.commerce.catalog._search import attribute_index, search_text

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_MATCHED_TEXT = (
    sa.Text()
    .with_variant(mysql.TEXT(collation="utf8mb4_bin"), "mariadb")
    .with_variant(mysql.TEXT(collation="utf8mb4_bin"), "mysql")
)


def upgrade() -> None:
    for table in ("ck_checkouts", "ck_orders"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("anonymous_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("ck_products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", _MATCHED_TEXT, nullable=True))
        batch_op.add_column(sa.Column("attribute_index", _MATCHED_TEXT, nullable=True))
    _index_existing_products()


def _index_existing_products() -> None:
    """Fill the new columns of the products already stored (the same code new ones use)."""
    bind = op.get_bind()
    products = sa.table(
        "ck_products",
        sa.column("id"),
        sa.column("name"),
        sa.column("attributes"),
        sa.column("search_text"),
        sa.column("attribute_index"),
    )
    variants = sa.table("ck_variants", sa.column("product_id"), sa.column("attributes"))
    variant_maps: dict[str, list[dict[str, str]]] = {}
    for pid, attributes in bind.execute(sa.select(variants.c.product_id, variants.c.attributes)):
        variant_maps.setdefault(pid, []).append(json.loads(attributes))
    rows = bind.execute(sa.select(products.c.id, products.c.name, products.c.attributes)).all()
    for pid, name, attributes in rows:
        maps = [json.loads(attributes), *variant_maps.get(pid, [])]
        bind.execute(
            products.update()
            .where(products.c.id == pid)
            .values(search_text=search_text(name, maps), attribute_index=attribute_index(maps))
        )


def downgrade() -> None:
    with op.batch_alter_table("ck_products", schema=None) as batch_op:
        batch_op.drop_column("attribute_index")
        batch_op.drop_column("search_text")
    for table in ("ck_orders", "ck_checkouts"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("anonymous_id")
