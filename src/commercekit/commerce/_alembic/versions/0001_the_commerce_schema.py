"""The commerce schema: every service's tables, the outbox, their indexes and checks.

Revision ID: 0001
Revises: (none)
Create Date: 2026-12-01 23:23:20.122864
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ck_carts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("voucher", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ck_carts")),
    )
    with op.batch_alter_table("ck_carts", schema=None) as batch_op:
        batch_op.create_index("ix_ck_carts_customer", ["customer_id"], unique=False)
        batch_op.create_index("ix_ck_carts_status_updated", ["status", "updated_at"], unique=False)

    op.create_table(
        "ck_checkout_steps",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("checkout_id", sa.String(length=80), nullable=False),
        sa.Column("step", sa.String(length=24), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ck_checkout_steps")),
    )
    with op.batch_alter_table("ck_checkout_steps", schema=None) as batch_op:
        batch_op.create_index("ix_ck_checkout_steps_checkout", ["checkout_id", "id"], unique=False)

    op.create_table(
        "ck_checkouts",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("cart_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("step", sa.String(length=24), nullable=False),
        sa.Column("lease_owner", sa.String(length=40), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("quote", sa.Text(), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ck_checkouts")),
        sa.UniqueConstraint("cart_id", "attempt", name="uq_ck_checkouts_cart_attempt"),
    )
    with op.batch_alter_table("ck_checkouts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ck_checkouts_status_lease", ["status", "lease_until"], unique=False
        )

    op.create_table(
        "ck_orders",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("checkout_key", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("payment_status", sa.String(length=24), nullable=False),
        sa.Column("fulfilment_status", sa.String(length=24), nullable=False),
        sa.Column("subtotal_minor", sa.BigInteger(), nullable=False),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("shipping_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("captured_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("payment_id", sa.String(length=128), nullable=False),
        sa.Column("reservation_id", sa.String(length=64), nullable=False),
        sa.Column("voucher", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ck_orders")),
        sa.UniqueConstraint("checkout_key", name=op.f("uq_ck_orders_checkout_key")),
        sa.UniqueConstraint("number", name=op.f("uq_ck_orders_number")),
    )
    with op.batch_alter_table("ck_orders", schema=None) as batch_op:
        batch_op.create_index("ix_ck_orders_customer", ["customer_id", "created_at"], unique=False)

    op.create_table(
        "ck_products",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("images", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ck_products")),
    )
    with op.batch_alter_table("ck_products", schema=None) as batch_op:
        batch_op.create_index("ix_ck_products_active_id", ["active", "id"], unique=False)

    op.create_table(
        "ck_reservations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ck_reservations")),
    )
    with op.batch_alter_table("ck_reservations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ck_reservations_status_expires", ["status", "expires_at"], unique=False
        )

    op.create_table(
        "ck_stock",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("allocated", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "on_hand >= 0 AND allocated >= 0 AND reserved >= 0 AND allocated + reserved <= on_hand",
            name=op.f("ck_stock_not_oversold"),
        ),
        sa.PrimaryKeyConstraint("sku", "location", name=op.f("pk_ck_stock")),
    )
    op.create_table(
        "ck_stock_moves",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ck_stock_moves")),
    )
    op.create_table(
        "ck_voucher_uses",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("use_key", sa.String(length=128), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("code", "use_key", name=op.f("pk_ck_voucher_uses")),
    )
    op.create_table(
        "ck_vouchers",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("percent", sa.String(length=16), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.Float(), nullable=True),
        sa.Column("ends_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_ck_vouchers")),
    )
    op.create_table(
        "commercekit_outbox",
        sa.Column(
            "sequence",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column(
            "payload",
            sa.Text()
            .with_variant(mysql.LONGTEXT(), "mariadb")
            .with_variant(mysql.LONGTEXT(), "mysql"),
            nullable=False,
        ),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("claim_id", sa.String(length=36), nullable=True),
        sa.Column("claimed_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_commercekit_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_commercekit_outbox_event_id")),
    )
    with op.batch_alter_table("commercekit_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_commercekit_outbox_unsent", ["sent_at_ms", "sequence"], unique=False
        )

    op.create_table(
        "ck_order_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["ck_orders.id"], name=op.f("fk_ck_order_events_order_id_ck_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ck_order_events")),
    )
    with op.batch_alter_table("ck_order_events", schema=None) as batch_op:
        batch_op.create_index("ix_ck_order_events_order", ["order_id", "id"], unique=False)

    op.create_table(
        "ck_order_lines",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("gross_minor", sa.BigInteger(), nullable=False),
        sa.Column("fulfilled", sa.Integer(), nullable=False),
        sa.Column("returned", sa.Integer(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["ck_orders.id"], name=op.f("fk_ck_order_lines_order_id_ck_orders")
        ),
        sa.PrimaryKeyConstraint("order_id", "line_no", name=op.f("pk_ck_order_lines")),
    )
    op.create_table(
        "ck_reservation_lines",
        sa.Column("reservation_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("shipped", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "qty > 0 AND shipped >= 0 AND shipped <= qty",
            name=op.f("ck_reservation_lines_line_quantities"),
        ),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["ck_reservations.id"],
            name=op.f("fk_ck_reservation_lines_reservation_id_ck_reservations"),
        ),
        sa.PrimaryKeyConstraint(
            "reservation_id", "sku", "location", name=op.f("pk_ck_reservation_lines")
        ),
    )
    with op.batch_alter_table("ck_reservation_lines", schema=None) as batch_op:
        batch_op.create_index("ix_ck_reservation_lines_sku", ["sku", "location"], unique=False)

    op.create_table(
        "ck_variants",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["ck_products.id"], name=op.f("fk_ck_variants_product_id_ck_products")
        ),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_ck_variants")),
    )
    with op.batch_alter_table("ck_variants", schema=None) as batch_op:
        batch_op.create_index("ix_ck_variants_product", ["product_id"], unique=False)

    op.create_table(
        "ck_prices",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sku"], ["ck_variants.sku"], name=op.f("fk_ck_prices_sku_ck_variants")
        ),
        sa.PrimaryKeyConstraint("sku", "channel", "currency", name=op.f("pk_ck_prices")),
    )


def downgrade() -> None:
    op.drop_table("ck_prices")
    with op.batch_alter_table("ck_variants", schema=None) as batch_op:
        batch_op.drop_index("ix_ck_variants_product")

    op.drop_table("ck_variants")
    with op.batch_alter_table("ck_reservation_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_ck_reservation_lines_sku")

    op.drop_table("ck_reservation_lines")
    op.drop_table("ck_order_lines")
    with op.batch_alter_table("ck_order_events", schema=None) as batch_op:
        batch_op.drop_index("ix_ck_order_events_order")

    op.drop_table("ck_order_events")
    with op.batch_alter_table("commercekit_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_commercekit_outbox_unsent")

    op.drop_table("commercekit_outbox")
    op.drop_table("ck_vouchers")
    op.drop_table("ck_voucher_uses")
    op.drop_table("ck_stock_moves")
    op.drop_table("ck_stock")
    with op.batch_alter_table("ck_reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_ck_reservations_status_expires")

    op.drop_table("ck_reservations")
    with op.batch_alter_table("ck_products", schema=None) as batch_op:
        batch_op.drop_index("ix_ck_products_active_id")

    op.drop_table("ck_products")
    with op.batch_alter_table("ck_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_ck_orders_customer")

    op.drop_table("ck_orders")
    with op.batch_alter_table("ck_checkouts", schema=None) as batch_op:
        batch_op.drop_index("ix_ck_checkouts_status_lease")

    op.drop_table("ck_checkouts")
    with op.batch_alter_table("ck_checkout_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_ck_checkout_steps_checkout")

    op.drop_table("ck_checkout_steps")
    with op.batch_alter_table("ck_carts", schema=None) as batch_op:
        batch_op.drop_index("ix_ck_carts_status_updated")
        batch_op.drop_index("ix_ck_carts_customer")

    op.drop_table("ck_carts")
