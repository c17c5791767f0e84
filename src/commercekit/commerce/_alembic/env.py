"""Alembic's environment for the commerce schema: online only, on the engine the config carries."""

from __future__ import annotations

from alembic import context

from commercekit.commerce import metadata
from commercekit.commerce.migrations import VERSION_TABLE

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
