from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from commercekit.metrics import InMemoryMetrics
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine

from .models import Base


@pytest.fixture
def metrics() -> InMemoryMetrics:
    return InMemoryMetrics()


@pytest.fixture
def db(tmp_path: Path, metrics: InMemoryMetrics) -> Iterator[Database]:
    """A SQLite file database (WAL mode), primary only."""
    engine = sqlite_engine(tmp_path / "shop.db")
    database = Database(ReplicatedTopology(Node("primary", engine)), metrics=metrics)
    database.create_all(Base.metadata)
    yield database
    database.close()
    engine.dispose()
