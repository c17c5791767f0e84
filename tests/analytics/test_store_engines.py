"""The aggregates on PostgreSQL and MariaDB (the machine's servers) equal DuckDB's reference."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from commercekit.analytics import AnalyticsStore, Delivery, Reports
from commercekit.repository import Database, Node, ReplicatedTopology
from tests.repository.test_outbox import _server_db

from ._history import FUNNEL, assert_matches, generate, malformed_bodies, reference


@pytest.fixture(params=["postgresql", "mariadb"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    yield from _server_db(request.param)


def test_aggregates_on_server_engines_match_duckdb(engine: Engine) -> None:
    events = generate(800, seed=21)
    store = AnalyticsStore(Database(ReplicatedTopology(Node("primary", engine))), funnels=[FUNNEL])
    store.create()
    bodies = [e.to_bytes() for e in events] + malformed_bodies()
    deliveries = [Delivery(str(i), b, f"m{i}") for i, b in enumerate(bodies)]
    for i in range(0, len(deliveries), 400):
        store.apply(deliveries[i : i + 400])
    again = store.apply(deliveries[:500])  # a redelivered stretch changes nothing
    assert (again.applied, again.duplicates) == (0, 500)
    reports = Reports(store)
    assert_matches(reports, reference(events))
    assert len(reports.dead_letters()) == len(malformed_bodies())


def test_two_consumers_applying_the_same_messages_count_them_once(engine: Engine) -> None:
    import threading

    events = generate(600, seed=22)
    store = AnalyticsStore(Database(ReplicatedTopology(Node("primary", engine))), funnels=[FUNNEL])
    store.create()
    deliveries = [Delivery(str(i), e.to_bytes()) for i, e in enumerate(events)]
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            for i in range(0, len(deliveries), 150):
                store.apply(deliveries[i : i + 150])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=consume) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert_matches(Reports(store), reference(events))
