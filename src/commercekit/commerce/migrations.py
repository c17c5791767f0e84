"""Alembic migrations of the commerce schema (the ``[migrations]`` extra).

::

    from commercekit.commerce.migrations import upgrade
    upgrade(engine)               # to the newest revision ("head")

Run it against each replication group's primary (replicas get the DDL by
replication); ``alembic_config(engine)`` gives an Alembic ``Config`` for the
rest of Alembic's commands. The version table is ``commercekit_commerce_version``,
so the shop's own Alembic history can live beside it.
"""

from __future__ import annotations

from pathlib import Path as _Path
from typing import Any as _Any

from sqlalchemy import Engine as _Engine

__all__ = ["VERSION_TABLE", "alembic_config", "downgrade", "upgrade"]

VERSION_TABLE = "commercekit_commerce_version"
"""Where Alembic records the commerce schema's revision."""

_HERE = _Path(__file__).resolve().parent / "_alembic"


def alembic_config(engine: _Engine) -> _Any:
    """An Alembic ``Config`` whose scripts are this package's, bound to *engine*."""
    from commercekit._extras import require

    Config = require("alembic.config", extra="migrations", feature="the commerce migrations").Config
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: _Engine, revision: str = "head") -> None:
    """Upgrade the commerce schema on *engine* to *revision*."""
    config = alembic_config(engine)  # a MissingExtraError without Alembic
    from alembic import command

    command.upgrade(config, revision)


def downgrade(engine: _Engine, revision: str) -> None:
    """Downgrade the commerce schema on *engine* to *revision* (``"base"``: drop it all)."""
    config = alembic_config(engine)
    from alembic import command

    command.downgrade(config, revision)
