"""The commerce schema's Alembic migrations: an empty PostgreSQL database upgraded to head
matches the metadata exactly, and downgrades back to nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from commercekit.commerce import metadata
from commercekit.repository import engine_from_url
from tests.integration import _commerce as h

pytestmark = pytest.mark.integration

alembic = pytest.importorskip("alembic", reason="the [migrations] extra is not installed")


def test_upgrading_an_empty_postgres_database_gives_the_metadata() -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from commercekit.commerce.migrations import VERSION_TABLE, downgrade, upgrade

    with h.scratch_database(h.POSTGRES, "PostgreSQL") as url:
        engine = engine_from_url(url)
        try:
            upgrade(engine)
            with engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
                assert context.get_current_revision() == "0008"
                diff = compare_metadata(context, metadata)
                tables = set(sa.inspect(conn).get_table_names())
            assert diff == []
            assert {t.name for t in metadata.sorted_tables} <= tables
            check = {c["name"] for c in sa.inspect(engine).get_check_constraints("ck_stock")}
            assert "ck_stock_not_oversold" in check
            downgrade(engine, "base")
            assert set(sa.inspect(engine).get_table_names()) == {VERSION_TABLE}
        finally:
            engine.dispose()


def test_sqlite_downgrades_and_upgrades_again_with_orders_in_it(tmp_path: Path) -> None:
    """A batch rebuild of ck_orders (0006) keeps the rows its lines and events point at."""
    from commercekit.commerce.migrations import downgrade, upgrade
    from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine
    from tests.commerce._shop import make_shop
    from tests.commerce.test_orders_refunds import SHIPPING, paid_order

    engine = sqlite_engine(tmp_path / "shop.db")
    db = Database(ReplicatedTopology(Node("primary", engine)))
    try:
        upgrade(engine)
        shop, _, _ = make_shop(db, shipping=SHIPPING)
        order = paid_order(shop)
        shop.orders.cancel(order.id)
        downgrade(engine, "0005")
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # on again
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            rows = conn.exec_driver_sql("SELECT id, refunds_pending FROM ck_orders").all()
        assert rows == [(order.id, 0)]
        assert len(shop.orders.events(order.id)) > 1
    finally:
        db.close()
        engine.dispose()


def test_mariadb_keeps_timestamps_in_double_precision_from_0007() -> None:
    """MariaDB's FLOAT is single precision: a time near 1.8e9 s was kept to the nearest 128 s
    (a lease or an expiry a minute off). 0007 makes every time column DOUBLE; down is FLOAT."""
    from commercekit.commerce.migrations import downgrade, upgrade

    def types(engine: sa.Engine) -> set[str]:
        found = set()
        for table in ("ck_orders", "ck_checkouts", "ck_reservations", "ck_vouchers"):
            for col in sa.inspect(engine).get_columns(table):
                if col["name"] in ("updated_at", "lease_until", "expires_at", "ends_at"):
                    found.add(type(col["type"]).__name__)
        return found

    with h.scratch_database(h.MARIADB, "MariaDB") as url:
        engine = engine_from_url(url)
        try:
            upgrade(engine, "0006")
            assert types(engine) == {"FLOAT"}
            upgrade(engine)
            assert types(engine) == {"DOUBLE"}
            downgrade(engine, "0006")
            assert types(engine) == {"FLOAT"}
        finally:
            engine.dispose()


def test_mariadb_compares_outbox_event_ids_exactly_from_0008() -> None:
    """The outbox's unique event id ignored case and trailing spaces on MariaDB (``e1``
    after ``E1`` was "stored already" and dropped). 0008 makes it binary; down is as made."""
    from commercekit.commerce.migrations import downgrade, upgrade

    query = sa.text(
        "SELECT collation_name FROM information_schema.columns WHERE table_schema = DATABASE()"
        " AND table_name = 'commercekit_outbox' AND column_name = 'event_id'"
    )
    with h.scratch_database(h.MARIADB, "MariaDB") as url:
        engine = engine_from_url(url)
        try:
            upgrade(engine, "0007")
            with engine.connect() as conn:
                assert conn.scalar(query) != "utf8mb4_nopad_bin"
            upgrade(engine)
            with engine.connect() as conn:
                assert conn.scalar(query) == "utf8mb4_nopad_bin"
                assert "uq_commercekit_outbox_event_id" in {
                    i["name"] for i in sa.inspect(conn).get_indexes("commercekit_outbox")
                } | {
                    u["name"] for u in sa.inspect(conn).get_unique_constraints("commercekit_outbox")
                }
            downgrade(engine, "0007")
            with engine.connect() as conn:
                assert conn.scalar(query) != "utf8mb4_nopad_bin"
        finally:
            engine.dispose()
