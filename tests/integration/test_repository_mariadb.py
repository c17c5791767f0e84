"""The repository on a real MariaDB primary with a GTID replica: what only it has.

Its tokens are GTID positions. The promises every replicated engine keeps are
in ``test_repository_replicated.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commercekit.metrics import InMemoryMetrics
from commercekit.repository import Database, GtidPosition
from tests.integration._histories import Item, replicated_database
from tests.integration._servers import MariaDbPair

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def maria(mariadb_pair: MariaDbPair) -> Iterator[tuple[Database, InMemoryMetrics, MariaDbPair]]:
    with replicated_database(
        mariadb_pair.url("primary"), [mariadb_pair.url("replica")], mariadb_pair.wait_caught_up
    ) as (db, metrics):
        yield db, metrics, mariadb_pair


def test_tokens_are_gtid_positions(maria: tuple[Database, InMemoryMetrics, MariaDbPair]) -> None:
    db, _, _ = maria
    done = db.run(lambda uow: uow.repository(Item).add(Item(id=1, value=1)))
    assert done.token is not None
    assert "=gtid:" in done.token
    assert db.repository(Item).require(1, token=done.token).value == 1
    assert isinstance(
        db.unit_of_work().begin().close() or GtidPosition.parse("0-1-1"), GtidPosition
    )
