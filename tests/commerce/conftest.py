"""Fixtures of the commerce tests: a SQLite file database with the schema, checked after each test.

Every test that uses ``db`` ends with the inventory invariants checked
(``verify_inventory``): on_hand >= allocated + reserved, reserved = the live
reservations, allocated = what committed ones still hold.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from commercekit.commerce import metadata
from commercekit.commerce.inventory import verify_inventory
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@contextlib.contextmanager
def checked_database(engine: sa.Engine) -> Iterator[Database]:
    """A Database on *engine* with the commerce schema; its inventory checked when it closes.

    The engine is disposed of at the end, after the check.
    """
    database = Database(ReplicatedTopology(Node("primary", engine)))
    database.create_all(metadata)
    yield database
    report = verify_inventory(database)
    database.close()
    engine.dispose()
    assert report.ok, report.drift


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with checked_database(sqlite_engine(tmp_path / "shop.db")) as database:
        yield database
