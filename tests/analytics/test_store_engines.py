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


def test_two_consumers_applying_different_messages_at_once_count_every_person_right(
    engine: Engine,
) -> None:
    """Two consumers of one group apply different messages of the same persons at once
    (one history, dealt alternately). The per-person aggregates read what the other's
    batch wrote: with two snapshots side by side, a funnel's progress and a person's
    purchases were recounted from half the events, and the last to commit won."""
    import threading

    events = generate(1200, seed=23)
    store = AnalyticsStore(Database(ReplicatedTopology(Node("primary", engine))), funnels=[FUNNEL])
    store.create()
    deliveries = [Delivery(str(i), e.to_bytes()) for i, e in enumerate(events)]
    errors: list[BaseException] = []

    def consume(mine: list[Delivery]) -> None:
        try:
            for i in range(0, len(mine), 50):
                store.apply(mine[i : i + 50])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=consume, args=(deliveries[k::2],)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert_matches(Reports(store), reference(events))


def test_an_event_id_longer_than_the_processed_key_is_parked_not_fatal(engine: Engine) -> None:
    """Ids past the 64 characters of the ``processed`` key, a NUL byte, a lone surrogate: the
    message is parked with a reason and the consumer goes on (SQLite stores any of them;
    these servers refuse such a row, and refusing its dead letter too stopped the consumer)."""
    import json

    from commercekit.analytics import AnalyticsConsumer, LogRecord, product_viewed
    from commercekit.money import Money
    from commercekit.testing import InMemoryEventLog

    good = [product_viewed("tee", Money.of("1.00", "EUR"), customer_id=f"c{i}") for i in range(3)]
    long_id = json.loads(good[0].to_bytes())
    long_id["event_id"] = "e" * 100  # a valid event but for its id
    log = InMemoryEventLog()
    log.publish(
        [
            LogRecord(good[0].event_id, good[0].to_bytes()),
            LogRecord("e" * 100, json.dumps(long_id).encode()),
            LogRecord("m" * 150, b"not json, from a publisher with long ids"),
            LogRecord("nul\x00id", b"\x00\x01 a NUL byte, which PostgreSQL text refuses"),
            LogRecord("\udc80-lone-surrogate", b"\xff\xfe not UTF-8 either"),
            *(LogRecord(e.event_id, e.to_bytes()) for e in good[1:]),
        ]
    )
    store = AnalyticsStore(Database(ReplicatedTopology(Node("primary", engine))))
    store.create()
    consumer = AnalyticsConsumer(log, store, poll_timeout_s=0)
    assert consumer.run(idle_exit_s=0) == 3
    parked = Reports(store).dead_letters()
    assert len(parked) == 4
    assert all(p["reason"] for p in parked)
    assert any("64" in p["reason"] for p in parked)
    assert log.consume(10, 0) == []
    assert consumer.run(idle_exit_s=0) == 0  # a second pass parks nothing twice
    assert len(Reports(store).dead_letters()) == 4


def test_a_sql_log_refusing_a_record_is_not_reported_as_down(engine: Engine) -> None:
    """A record the database refuses for good (an id past the 64-character column) is a
    RepositoryError, not UnavailableError: a relay would wait out "unavailable" forever."""
    from commercekit.analytics import LogRecord, SqlEventLog
    from commercekit.errors import RepositoryError, TransientError

    log = SqlEventLog(engine)
    log.create()
    with pytest.raises(RepositoryError) as caught:
        log.publish([LogRecord("e" * 100, b"{}")])
    assert not isinstance(caught.value, TransientError)
    log.publish([LogRecord("e1", b"{}")])
    assert [d.event_id for d in log.consume(10, 0)] == ["e1"]


def test_ids_differing_only_in_case_or_trailing_spaces_are_different_keys(engine: Engine) -> None:
    """Customer, anonymous and product ids are compared exactly: on MariaDB the server's
    default collation compares case-insensitively and ignores trailing spaces, so ``Abc``
    and ``abc`` shared one cart, one cohort row and one product count, and the identity
    link of one anonymous id replaced the other's."""
    from sqlalchemy import select

    from commercekit.analytics import LineItem, identify, order_completed, product_viewed
    from commercekit.money import Money

    eur = Money.of("5.00", "EUR")
    events = [
        product_viewed("Tee", eur, anonymous_id="Visitor"),
        product_viewed("tee", eur, anonymous_id="visitor"),
        product_viewed("tee ", eur, anonymous_id="visitor "),
        identify("Abc", "Visitor"),
        identify("abc", "visitor"),
        identify("abc ", "visitor "),
        order_completed("o1", eur, [LineItem("Tee", eur)], customer_id="Abc"),
        order_completed("o2", eur, [LineItem("tee", eur)], customer_id="abc"),
        order_completed("o3", eur, [LineItem("tee ", eur)], customer_id="abc "),
    ]
    store = AnalyticsStore(Database(ReplicatedTopology(Node("primary", engine))))
    store.create()
    result = store.apply([Delivery(str(i), e.to_bytes()) for i, e in enumerate(events)])
    assert (result.applied, result.duplicates, result.dead_lettered) == (9, 0, 0)
    reports = Reports(store)
    viewed = {(p.product, p.count) for p in reports.top_products("viewed")}
    assert viewed == {("Tee", 1), ("tee", 1), ("tee ", 1)}
    bought = {(p.product, p.count) for p in reports.top_products("bought")}
    assert bought == {("Tee", 1), ("tee", 1), ("tee ", 1)}
    assert [c.size for c in reports.cohorts()] == [3]
    it = store.schema.identities
    with engine.connect() as conn:
        links = set(conn.execute(select(it.c.source, it.c.person)))
    assert links == {("Visitor", "Abc"), ("visitor", "abc"), ("visitor ", "abc ")}


def test_two_consumers_parking_the_same_message_park_it_once(engine: Engine) -> None:
    """Two consumers holding the same poison message park it at once: the second waits for
    the first (both take the store's writer row, as batches do) and finds it parked; a
    second insert of its key is taken as done, never raised as DuplicateError."""
    import threading

    store = AnalyticsStore(Database(ReplicatedTopology(Node("primary", engine))))
    store.create()
    messages = [Delivery(str(i), f"poison {i}".encode(), f"m{i}") for i in range(20)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def consume() -> None:
        for d in messages:
            try:
                barrier.wait(30)
                store.park(d, "refused")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=consume) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    parked = Reports(store).dead_letters()
    assert sorted(p["handle"] for p in parked) == sorted(d.handle for d in messages)
    assert store.is_processed([f"m{i}" for i in range(20)]) == {f"m{i}" for i in range(20)}


def test_sql_log_groups_differing_only_in_case_keep_their_own_offsets(engine: Engine) -> None:
    """Consumer groups ``Analytics`` and ``analytics`` of one SqlEventLog read the log each
    for itself: on MariaDB the offsets' key compared case-insensitively, so the second
    group started where the first had acknowledged and never read those messages."""
    from commercekit.analytics import LogRecord, SqlEventLog

    first = SqlEventLog(engine, group="Analytics")
    first.create()
    first.publish([LogRecord(f"e{i}", b"{}") for i in range(3)])
    first.acknowledge(first.consume(10, 0))
    first.close()
    for group in ("analytics", "analytics "):
        other = SqlEventLog(engine, group=group)
        delivered = other.consume(10, 0)
        assert [d.event_id for d in delivered] == ["e0", "e1", "e2"], group
        other.acknowledge(delivered)
        other.close()
