"""The commerce schema's Alembic migrations: an empty PostgreSQL database upgraded to head
matches the metadata exactly, and downgrades back to nothing.
"""

from __future__ import annotations

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
                assert context.get_current_revision() == "0006"
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
