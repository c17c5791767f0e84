"""Alembic's environment for the commerce schema: online only, on the engine the config carries.

On SQLite a revision that alters a table rebuilds it (a batch: copy, drop,
rename), and dropping ck_orders with foreign keys on fails once its lines and
events point at it. As SQLite's own procedure for altering a table says,
foreign keys are turned off outside the transaction (``PRAGMA foreign_keys``
does nothing inside one), checked with ``PRAGMA foreign_key_check`` before the
commit, and turned on again after.
"""

from __future__ import annotations

from alembic import context

from commercekit.commerce import metadata
from commercekit.commerce.migrations import VERSION_TABLE

engine = context.config.attributes["engine"]
sqlite = engine.dialect.name == "sqlite"


def _pragma(connection: object, sql: str) -> None:
    """Run *sql* on the driver's connection: outside SQLAlchemy's transaction."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[attr-defined]
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


with engine.connect() as connection:
    if sqlite:
        _pragma(connection, "PRAGMA foreign_keys = OFF")
    try:
        with connection.begin():
            context.configure(
                connection=connection,
                target_metadata=metadata,
                version_table=VERSION_TABLE,
                render_as_batch=sqlite,
            )
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
    finally:
        if sqlite:
            _pragma(connection, "PRAGMA foreign_keys = ON")
