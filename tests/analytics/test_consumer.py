"""The consumer never stops on a bad message: a batch the store refuses is applied one by one."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from commercekit.analytics import (
    AnalyticsConsumer,
    AnalyticsEvent,
    AnalyticsStore,
    ApplyResult,
    Delivery,
    JsonLinesLog,
    LogRecord,
    Reports,
    product_viewed,
)
from commercekit.errors import (
    CommitOutcomeUnknownError,
    InvalidInputError,
    ReadOnlyError,
    RepositoryError,
    TransientError,
    UnavailableError,
)
from commercekit.money import Money
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine
from commercekit.testing import InMemoryMetrics
from tests.contract.test_eventlog_contract import open_engine


def test_a_poison_message_is_parked_and_the_rest_applied(tmp_path: Path) -> None:
    log = JsonLinesLog(tmp_path / "events.jsonl")
    good = [product_viewed("tee", Money.of("1.00", "EUR"), customer_id=f"c{i}") for i in range(5)]
    too_long = AnalyticsEvent("Product Viewed", {"product_id": "x" * 300}, customer_id="c9")
    records = [LogRecord(e.event_id, e.to_bytes()) for e in good[:2]]
    records.append(LogRecord(too_long.event_id, too_long.to_bytes()))
    records += [LogRecord(e.event_id, e.to_bytes()) for e in good[2:]]
    log.publish(records)
    store = AnalyticsStore(
        Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db"))))
    )
    store.create()
    assert AnalyticsConsumer(log, store, poll_timeout_s=0).run(idle_exit_s=0) == 5
    reports = Reports(store)
    assert reports.top_products("viewed")[0].count == 5
    (parked,) = reports.dead_letters()
    assert parked["event_id"] == too_long.event_id
    assert "product_id" in parked["reason"]


def test_a_line_nested_past_the_decoder_is_parked_and_the_rest_applied(tmp_path: Path) -> None:
    """A JSON-lines file another program wrote may hold anything: a line of 100,000 '['
    raised RecursionError out of consume (the decoder recurses once a level)."""
    path = tmp_path / "events.jsonl"
    log = JsonLinesLog(path)
    good = [product_viewed("tee", Money.of("1.00", "EUR"), customer_id=f"c{i}") for i in range(3)]
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in good[:1]])
    with path.open("ab") as f:
        f.write(b"[" * 100_000 + b"\n")
        f.write(b'{"body": ' + b"[" * 100_000 + b"}\n")
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in good[1:]])
    store = AnalyticsStore(
        Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db"))))
    )
    store.create()
    assert AnalyticsConsumer(log, store, poll_timeout_s=0).run(idle_exit_s=0) == 3
    reports = Reports(store)
    assert reports.top_products("viewed")[0].count == 3
    assert len(reports.dead_letters()) == 2


def test_park_is_idempotent(tmp_path: Path) -> None:
    from commercekit.analytics import Delivery

    store = AnalyticsStore(
        Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db"))))
    )
    store.create()
    d = Delivery("7", b"\xff\xfe not utf-8", "e-7")
    store.park(d, "refused")
    store.park(d, "refused")
    assert len(Reports(store).dead_letters()) == 1


def test_a_batch_the_database_refuses_is_applied_one_by_one(tmp_path: Path) -> None:

    from commercekit.errors import RepositoryError

    poison = product_viewed("tee", Money.of("1.00", "EUR"), customer_id="poison")

    class RefusingStore(AnalyticsStore):
        """Stands in for a database that refuses one row (a constraint the checks missed)."""

        def apply(self, deliveries: Sequence[Delivery]) -> ApplyResult:
            if any(d.event_id == poison.event_id for d in deliveries):
                raise RepositoryError("value too long for type character varying(200)")
            return super().apply(deliveries)

    log = JsonLinesLog(tmp_path / "events.jsonl")
    good = [product_viewed("tee", Money.of("1.00", "EUR"), customer_id=f"c{i}") for i in range(4)]
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in [*good[:2], poison, *good[2:]]])
    store = RefusingStore(Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db")))))
    store.create()
    assert AnalyticsConsumer(log, store, poll_timeout_s=0).run(idle_exit_s=0) == 4
    (parked,) = Reports(store).dead_letters()
    assert parked["event_id"] == poison.event_id
    assert "refused" in parked["reason"]


# A batch that fails with an error that is not commercekit's (a bug in a handler, a
# driver error nobody translated) is tried again a bounded number of times, then
# narrowed to the failing message, which is parked with its reason; a transient
# error is waited out however long it lasts. Each runs on the embedded defaults
# (JSON lines, SQL) and on Redis Streams, through the contract suite's engines.
LOGS = ["jsonl", "sql", "redis"]


def _views(n: int, prefix: str = "c") -> list[AnalyticsEvent]:
    return [
        product_viewed("tee", Money.of("1.00", "EUR"), customer_id=f"{prefix}{i}") for i in range(n)
    ]


class _HandlerBugStore(AnalyticsStore):
    """A store whose handler has a bug that one message trips (a foreign exception)."""

    poison = ""
    calls = 0

    def apply(self, deliveries: Sequence[Delivery]) -> ApplyResult:
        self.calls += 1
        if any(d.event_id == self.poison for d in deliveries):
            raise ZeroDivisionError("division by zero in a handler")
        return super().apply(deliveries)


class _FlakyStore(AnalyticsStore):
    """A store whose first *fails* batches fail with *error*, then work."""

    fails = 0
    error: Exception = RuntimeError("a driver error nobody translated")

    def apply(self, deliveries: Sequence[Delivery]) -> ApplyResult:
        if self.fails:
            self.fails -= 1
            raise self.error
        return super().apply(deliveries)


def _store(cls: type[AnalyticsStore], tmp_path: Path) -> Any:
    store = cls(Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db")))))
    store.create()
    return store


@pytest.mark.parametrize("kind", LOGS)
def test_a_batch_failing_with_a_foreign_error_parks_the_failing_message_and_goes_on(
    kind: str, tmp_path: Path
) -> None:
    with open_engine(kind, tmp_path) as engine:
        log = engine.connect("c1")
        good, (poison,) = _views(5), _views(1, prefix="poison")
        log.publish([LogRecord(e.event_id, e.to_bytes()) for e in [*good[:2], poison, *good[2:]]])
        store = _store(_HandlerBugStore, tmp_path)
        store.poison = poison.event_id
        waits: list[float] = []
        metrics = InMemoryMetrics()
        consumer = AnalyticsConsumer(
            log, store, poll_timeout_s=0.05, sleep=waits.append, metrics=metrics, max_attempts=3
        )
        assert consumer.run(idle_exit_s=0.1) == 5
        (parked,) = Reports(store).dead_letters()
        assert parked["event_id"] == poison.event_id
        assert "ZeroDivisionError" in parked["reason"]
        assert len(waits) == 2  # two retries of the whole batch, backed off, then narrowed
        assert metrics.value("commercekit_analytics_dead_letters_total", log="default") == 1
        assert log.consume(10, 0) == []  # parked counts as handled: acknowledged


@pytest.mark.parametrize("kind", LOGS)
def test_a_foreign_error_that_passes_loses_and_parks_nothing(kind: str, tmp_path: Path) -> None:
    with open_engine(kind, tmp_path) as engine:
        log = engine.connect("c1")
        log.publish([LogRecord(e.event_id, e.to_bytes()) for e in _views(6)])
        store = _store(_FlakyStore, tmp_path)
        store.fails = 2
        consumer = AnalyticsConsumer(
            log, store, batch_size=3, poll_timeout_s=0.05, sleep=_no_wait, max_attempts=3
        )
        assert consumer.run(idle_exit_s=0.1) == 6
        assert Reports(store).dead_letters() == []
        assert Reports(store).top_products("viewed")[0].count == 6


@pytest.mark.parametrize("kind", LOGS)
def test_a_transient_error_is_waited_out_past_the_bound_for_unknown_errors(
    kind: str, tmp_path: Path
) -> None:
    with open_engine(kind, tmp_path) as engine:
        log = engine.connect("c1")
        log.publish([LogRecord(e.event_id, e.to_bytes()) for e in _views(4)])
        store = _store(_FlakyStore, tmp_path)
        store.fails, store.error = 10, UnavailableError("the database is down")
        waits: list[float] = []
        consumer = AnalyticsConsumer(
            log, store, poll_timeout_s=0.05, sleep=waits.append, max_attempts=3
        )
        assert consumer.run(idle_exit_s=0.1) == 4
        assert Reports(store).dead_letters() == []
        assert len(waits) == 10
        assert waits == sorted(waits)
        assert waits[-1] > waits[0]


def test_run_once_raises_typed_errors_while_it_retries_a_foreign_failure(tmp_path: Path) -> None:
    log = JsonLinesLog(tmp_path / "events.jsonl")
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in _views(2)])
    store = _store(_FlakyStore, tmp_path)
    store.fails = 1
    consumer = AnalyticsConsumer(log, store, poll_timeout_s=0, max_attempts=2)
    with pytest.raises(TransientError) as caught:
        consumer.run_once()
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert consumer.run_once().applied == 2


def test_max_attempts_must_be_positive(tmp_path: Path) -> None:
    store = _store(AnalyticsStore, tmp_path)
    with pytest.raises(InvalidInputError):
        AnalyticsConsumer(JsonLinesLog(tmp_path / "e.jsonl"), store, max_attempts=0)


def _no_wait(seconds: float) -> None:
    pass


def test_a_redis_entry_whose_event_id_is_not_utf8_is_parked(tmp_path: Path) -> None:
    """Another publisher's entry with an event id that is not UTF-8 (a stream is bytes):
    parked with its reason, never an error out of consume that stops the consumer."""
    with open_engine("redis", tmp_path) as engine:
        log = engine.connect("c1")
        views = _views(2)
        log.publish([LogRecord(views[0].event_id, views[0].to_bytes())])
        log._client.xadd(log.stream, {"event_id": b"\xff\xfe-id", "body": b"\xff not json"})  # type: ignore[attr-defined]
        log.publish([LogRecord(views[1].event_id, views[1].to_bytes())])
        store = _store(AnalyticsStore, tmp_path)
        assert AnalyticsConsumer(log, store, poll_timeout_s=0.05).run(idle_exit_s=0.1) == 2
        (parked,) = Reports(store).dead_letters()
        assert parked["reason"]
        assert parked["event_id"] == "\ufffd\ufffd-id"
        assert log.consume(10, 0) == []


def test_the_lag_gauge_follows_batches_of_duplicates_and_empty_polls(tmp_path: Path) -> None:
    """A redelivered stretch applies nothing new; the gauge must still come down to 0, or
    the shipped CommercekitAnalyticsConsumerStalled alert (lag > 0, nothing consumed)
    pages for a consumer that is done."""
    from commercekit.testing import InMemoryEventLog

    views = _views(6)
    log = InMemoryEventLog()
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in views])
    store = _store(AnalyticsStore, tmp_path)
    store.apply([Delivery(str(i), e.to_bytes()) for i, e in enumerate(views[3:])])  # seen before
    metrics = InMemoryMetrics()
    consumer = AnalyticsConsumer(log, store, batch_size=3, poll_timeout_s=0, metrics=metrics)
    assert consumer.run_once().applied == 3
    assert metrics.value("commercekit_analytics_consumer_lag", log="default") == 3
    again = consumer.run_once()
    assert (again.applied, again.duplicates) == (0, 3)
    assert metrics.value("commercekit_analytics_consumer_lag", log="default") == 0


@pytest.mark.parametrize(
    "settings", [{"batch_size": 0}, {"batch_size": True}, {"poll_timeout_s": -1.0}]
)
def test_bad_consumer_settings_are_refused_when_it_is_made(
    settings: dict[str, Any], tmp_path: Path
) -> None:
    store = _store(AnalyticsStore, tmp_path)
    with pytest.raises(InvalidInputError):
        AnalyticsConsumer(JsonLinesLog(tmp_path / "e.jsonl"), store, **settings)


# A message is parked only when it fails alone while the store applies others of its
# batch alone (after it): an outage that outlasts max_attempts, whatever error it
# raises, holds the batch and waits, and parks nothing.
class _OutageStore(AnalyticsStore):
    """The first *fails* calls to apply fail with *error*; park fails *park_fails* times."""

    fails = 0
    park_fails = 0
    error: Exception = ConnectionResetError("connection reset by peer")
    commit_first = False  # the failing call commits before it raises (outcome unknown)
    poison = ""

    def apply(self, deliveries: Sequence[Delivery]) -> ApplyResult:
        if any(d.event_id == self.poison for d in deliveries):
            raise ZeroDivisionError("division by zero in a handler")
        if self.fails:
            self.fails -= 1
            if self.commit_first:
                super().apply(deliveries)
            raise self.error
        return super().apply(deliveries)

    def park(self, delivery: Delivery, reason: str) -> None:
        if self.park_fails:
            self.park_fails -= 1
            raise ConnectionResetError("connection reset by peer")
        super().park(delivery, reason)


def _counted(store: AnalyticsStore) -> int:
    top = Reports(store).top_products("viewed")
    return top[0].count if top else 0


OUTAGES: list[tuple[str, Exception, bool]] = [
    ("foreign", ConnectionResetError("connection reset by peer"), False),
    ("refused", RepositoryError("database error on p: the server is shutting down"), False),
    ("outcome-unknown", CommitOutcomeUnknownError("the connection failed during COMMIT"), False),
    ("committed-then-lost", CommitOutcomeUnknownError("the connection failed in COMMIT"), True),
    ("read-only", ReadOnlyError("p is read-only and refused a write"), False),
]


@pytest.mark.parametrize("kind", LOGS)
@pytest.mark.parametrize(("name", "error", "commit_first"), OUTAGES, ids=[o[0] for o in OUTAGES])
def test_an_outage_longer_than_max_attempts_parks_nothing_and_loses_nothing(
    kind: str, name: str, error: Exception, commit_first: bool, tmp_path: Path
) -> None:
    with open_engine(kind, tmp_path) as engine:
        log = engine.connect("c1")
        log.publish([LogRecord(e.event_id, e.to_bytes()) for e in _views(5)])
        store = _store(_OutageStore, tmp_path)
        store.fails, store.error, store.commit_first = 40, error, commit_first
        waits: list[float] = []
        consumer = AnalyticsConsumer(
            log, store, poll_timeout_s=0.05, sleep=waits.append, max_attempts=3
        )
        consumer.run(idle_exit_s=0.1)
        assert store.fails == 0
        assert Reports(store).dead_letters() == []
        assert _counted(store) == 5  # none lost, none counted twice
        assert len(waits) > 3  # the outage outlasted max_attempts
        assert waits == sorted(waits)  # backed off
        assert log.consume(10, 0) == []


@pytest.mark.parametrize("kind", LOGS)
def test_a_failing_park_holds_the_batch_and_parks_after(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with open_engine(kind, tmp_path) as engine:
        log = engine.connect("c1")
        good, (poison,) = _views(4), _views(1, prefix="poison")
        log.publish([LogRecord(e.event_id, e.to_bytes()) for e in [*good[:2], poison, *good[2:]]])
        store = _store(_OutageStore, tmp_path)
        store.poison, store.park_fails = poison.event_id, 5
        consumer = AnalyticsConsumer(log, store, poll_timeout_s=0.05, sleep=_no_wait)
        with caplog.at_level("WARNING", logger="commercekit.analytics"):
            assert consumer.run(idle_exit_s=0.1) == 4  # never stopped by park's error
        (parked,) = Reports(store).dead_letters()
        assert parked["event_id"] == poison.event_id
        assert _counted(store) == 4
        assert len([r for r in caplog.records if r.getMessage().startswith("parked")]) == 1


def test_run_once_wraps_a_failing_park_in_a_typed_error(tmp_path: Path) -> None:
    log = JsonLinesLog(tmp_path / "events.jsonl")
    good, (poison,) = _views(2), _views(1, prefix="poison")
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in [poison, *good]])
    store = _store(_OutageStore, tmp_path)
    store.poison, store.park_fails = poison.event_id, 1
    consumer = AnalyticsConsumer(log, store, poll_timeout_s=0, max_attempts=1)
    with pytest.raises(UnavailableError) as caught:
        consumer.run_once()
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    assert Reports(store).dead_letters() == []
    assert consumer.run_once().dead_lettered == 1
    assert _counted(store) == 2


def test_a_message_failing_alone_after_the_last_good_one_is_parked_only_if_the_store_works(
    tmp_path: Path,
) -> None:
    """The outage starts while the batch is narrowed: the messages after it are not parked."""
    log = JsonLinesLog(tmp_path / "events.jsonl")
    good = _views(4)
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in good])

    class StartsFailing(AnalyticsStore):
        calls = 0

        def apply(self, deliveries: Sequence[Delivery]) -> ApplyResult:
            self.calls += 1
            # the batch fails once; alone, the first two apply, then the store goes down
            if self.calls == 1 or 4 <= self.calls <= 9:
                raise ConnectionResetError("connection reset by peer")
            return super().apply(deliveries)

    store = _store(StartsFailing, tmp_path)
    consumer = AnalyticsConsumer(log, store, poll_timeout_s=0, sleep=_no_wait, max_attempts=1)
    assert consumer.run(idle_exit_s=0.1) == 4
    assert Reports(store).dead_letters() == []
    assert _counted(store) == 4


def test_a_lone_poison_message_is_held_until_a_good_one_shows_the_store_works(
    tmp_path: Path,
) -> None:
    log = JsonLinesLog(tmp_path / "events.jsonl")
    (poison,) = _views(1, prefix="poison")
    log.publish([LogRecord(poison.event_id, poison.to_bytes())])
    store = _store(_OutageStore, tmp_path)
    store.poison = poison.event_id
    consumer = AnalyticsConsumer(log, store, poll_timeout_s=0, sleep=_no_wait, max_attempts=1)
    for _ in range(3):
        with pytest.raises(TransientError):
            consumer.run_once()
    assert Reports(store).dead_letters() == []
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in _views(2)])
    result = consumer.run_once()
    assert (result.applied, result.dead_lettered) == (2, 1)
    assert Reports(store).dead_letters()[0]["event_id"] == poison.event_id


@pytest.mark.parametrize(
    "error",
    [
        CommitOutcomeUnknownError("the connection failed during COMMIT"),
        ReadOnlyError("p is read-only and refused a write"),
        UnavailableError("the database is down"),
    ],
)
def test_run_once_holds_the_batch_on_an_error_that_says_retry(
    error: Exception, tmp_path: Path
) -> None:
    log = JsonLinesLog(tmp_path / "events.jsonl")
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in _views(2)])
    store = _store(_OutageStore, tmp_path)
    store.fails, store.error = 1, error
    consumer = AnalyticsConsumer(log, store, poll_timeout_s=0, max_attempts=1)
    with pytest.raises(UnavailableError) as caught:
        consumer.run_once()
    assert caught.value is error or caught.value.__cause__ is error
    assert caught.value.__cause__ is not caught.value
    assert consumer.run_once().applied == 2
    assert Reports(store).dead_letters() == []


@pytest.mark.parametrize("kind", LOGS)
def test_a_lone_poison_message_left_pending_by_a_crash_is_parked_once_good_ones_come(
    kind: str, tmp_path: Path
) -> None:
    """After a restart the log hands out what the crashed consumer held (Redis: its own
    pending entries) first; the held poison must still meet the new messages."""
    with open_engine(kind, tmp_path) as engine:
        (poison,) = _views(1, prefix="poison")
        first = engine.connect("c1")
        first.publish([LogRecord(poison.event_id, poison.to_bytes())])
        assert [d.event_id for d in first.consume(10, 0.05)] == [poison.event_id]  # crashed
        log = engine.connect("c1")  # the restarted consumer
        store = _store(_OutageStore, tmp_path)
        store.poison = poison.event_id
        consumer = AnalyticsConsumer(
            log, store, poll_timeout_s=0.05, sleep=_no_wait, max_attempts=1
        )
        for _ in range(3):
            with pytest.raises(TransientError):
                consumer.run_once()
        log.publish([LogRecord(e.event_id, e.to_bytes()) for e in _views(2)])
        result = ApplyResult(0, 0, 0)
        for _ in range(5):
            with contextlib.suppress(TransientError):
                result = consumer.run_once()
                break
        assert (result.applied, result.dead_lettered) == (2, 1)
        assert Reports(store).dead_letters()[0]["event_id"] == poison.event_id


def test_an_acknowledgement_that_fails_once_still_counts_each_event_once(tmp_path: Path) -> None:
    class AckFailsOnce(JsonLinesLog):
        failed = False

        def acknowledge(self, deliveries: Sequence[Delivery]) -> None:
            if not self.failed:
                self.failed = True
                raise UnavailableError("the log went away before the acknowledgement")
            super().acknowledge(deliveries)

    log = AckFailsOnce(tmp_path / "events.jsonl")
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in _views(5)])
    store = _store(AnalyticsStore, tmp_path)
    metrics = InMemoryMetrics()
    consumer = AnalyticsConsumer(log, store, poll_timeout_s=0, sleep=_no_wait, metrics=metrics)
    assert consumer.run(idle_exit_s=0.05) == 5
    assert metrics.value("commercekit_analytics_events_consumed_total", log="default") == 5
    assert metrics.value("commercekit_analytics_duplicates_dropped_total", log="default") == 0
    assert _counted(store) == 5
