"""The contract every EventLog keeps: JSON lines, SQL, Redis Streams, NATS JetStream, in memory.

One suite over every engine, the fake in ``commercekit.testing`` included, so
the fake cannot drift from the real logs. Redis and NATS are the machine's
servers (127.0.0.1:6379 and :4222) on a stream named for the test, deleted
after; a missing server skips, or fails under ``COMMERCEKIT_REQUIRE_SERVICES=1``.

What every engine promises: records come in publish order with their event ids
and bodies; a read takes at most what it asks for and what is there; an empty
log reads empty; acknowledging twice, or a delivery the log never handed out,
changes nothing; what a consumer had not acknowledged when it stopped comes
again to the next consumer of its group (after the claim time: Redis'
``XAUTOCLAIM`` idle time, JetStream's ack wait), and what it had acknowledged
in order does not; a malformed message is delivered like any other, so the
consumer parks it in the dead letters and goes on. Only JetStream (and the fake
when asked) drops a second publish of an event id; the others deliver it again
and the consumer's de-duplication by event id makes the effect once.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from commercekit.analytics import (
    AnalyticsConsumer,
    AnalyticsStore,
    ApplyResult,
    Delivery,
    EventLog,
    JsonLinesLog,
    LogRecord,
    Reports,
    SqlEventLog,
    product_viewed,
)
from commercekit.errors import InvalidInputError, UnavailableError
from commercekit.money import Money
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine
from commercekit.testing import InMemoryEventLog, ManualClock
from tests.conftest import missing_service

REDIS_URL = "redis://127.0.0.1:6379/0"
NATS_URL = "nats://127.0.0.1:4222"
CLAIM_S = 0.3  # Redis claim idle time, JetStream ack wait, the fake's claim time
KINDS = ["jsonl", "sql", "redis", "nats", "memory"]


@attrs.frozen
class Engine:
    """One engine under test: *connect(consumer)* opens a connection to the test's log."""

    kind: str
    connect: Callable[[str], EventLog]
    dedupes: bool


def _redis_up() -> None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        missing_service(f"Redis at 127.0.0.1:6379 is not reachable: {exc}")


def _nats_up() -> None:
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
    except OSError as exc:
        missing_service(f"NATS at 127.0.0.1:4222 is not reachable: {exc}")


@contextlib.contextmanager
def open_engine(kind: str, tmp_path: Path, *, dedupe: bool = False) -> Iterator[Engine]:
    """*kind* on a log of its own, closed (and its stream deleted) after."""
    name = f"ck_test_{uuid.uuid4().hex[:10]}"
    opened: list[Any] = []
    connect: Callable[[str], EventLog]
    if kind == "jsonl":

        def connect(consumer: str) -> EventLog:
            return JsonLinesLog(tmp_path / f"{name}.jsonl")

    elif kind == "sql":
        engine = sqlite_engine(tmp_path / f"{name}.db")

        def connect(consumer: str) -> EventLog:
            log = SqlEventLog(engine)
            log.create()
            return log

    elif kind == "redis":
        _redis_up()
        from commercekit.analytics import RedisStreamsLog

        def connect(consumer: str) -> EventLog:
            log = RedisStreamsLog(REDIS_URL, stream=name, consumer=consumer, claim_idle_s=CLAIM_S)
            opened.append(log)
            return log

    elif kind == "nats":
        _nats_up()
        from commercekit.analytics import JetStreamLog

        def connect(consumer: str) -> EventLog:
            log = JetStreamLog(NATS_URL, stream=name, ack_wait_s=CLAIM_S)
            opened.append(log)
            return log

    else:
        root = InMemoryEventLog(claim_idle_s=CLAIM_S, deduplicate=dedupe)

        def connect(consumer: str) -> EventLog:
            return root.connect(consumer=consumer)

    try:
        yield Engine(kind, connect, dedupes=kind == "nats" or (kind == "memory" and dedupe))
    finally:
        for log in opened:
            log.close()
        if kind == "redis":
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            client.delete(name)
            client.close()
        elif kind == "nats":
            from commercekit.analytics import JetStreamLog

            cleaner = JetStreamLog(NATS_URL, stream=name)
            with contextlib.suppress(Exception):  # a test that never created it
                cleaner.delete_stream()
            cleaner.close()


@pytest.fixture(params=KINDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with open_engine(request.param, tmp_path) as e:
        yield e


def _records(stop: int, start: int = 0) -> list[LogRecord]:
    return [
        LogRecord(f"e{i}", f'{{"n":{i}}}'.encode(), key=f"k{i % 3}") for i in range(start, stop)
    ]


def _ids(deliveries: list[Delivery]) -> list[str | None]:
    return [d.event_id for d in deliveries]


def _drain(log: EventLog, want: int, *, within_s: float = 10.0) -> list[Delivery]:
    """Read until *want* deliveries came or *within_s* passed (a bound, not a pace)."""
    got: list[Delivery] = []
    deadline = time.monotonic() + within_s
    while len(got) < want and time.monotonic() < deadline:
        got.extend(log.consume(100, 0.1))
    return got


def _stopped(
    engine: Engine, published: int, acked: Callable[[list[Delivery]], list[Delivery]]
) -> EventLog:
    """Consumer c1 that read *published* records and acknowledged only *acked(got)*."""
    log = engine.connect("c1")
    log.publish(_records(published))
    log.acknowledge(acked(_drain(log, published)))
    return log


def test_records_arrive_in_publish_order_with_their_ids_and_bodies(engine: Engine) -> None:
    log = engine.connect("c1")
    log.publish([])
    log.publish(_records(20))
    log.publish(_records(30, 20))
    got = _drain(log, 30)
    assert _ids(got) == [f"e{i}" for i in range(30)]
    assert got[5].body == b'{"n":5}'
    assert all(d.deliveries == 1 for d in got)
    log.acknowledge(got)
    assert log.consume(100, 0) == []


def test_an_empty_log_reads_empty(engine: Engine) -> None:
    log = engine.connect("c1")
    assert log.consume(10, 0) == []
    assert log.consume(10, 0.05) == []
    log.acknowledge([])
    assert log.consume(10, 0) == []


def test_an_empty_read_waits_its_timeout_without_spinning(engine: Engine) -> None:
    """``consume(n, timeout_s)`` on an empty log blocks up to *timeout_s*, idle.

    A consumer loop relies on it for its pace: a log that answered at once
    would have the loop poll as fast as the CPU allows (a whole core while idle).
    """
    log = engine.connect("c1")
    log.consume(10, 0)  # connect, create the group: not part of the wait
    started, cpu = time.monotonic(), time.thread_time()
    assert log.consume(10, 0.4) == []
    waited, spent = time.monotonic() - started, time.thread_time() - cpu
    assert waited >= 0.35, f"{engine.kind} answered an empty read after {waited:.3f} s"
    assert spent < 0.1, f"{engine.kind} spent {spent:.3f} s of CPU waiting 0.4 s"


def test_a_record_published_during_a_wait_ends_it(engine: Engine) -> None:
    import threading

    log = engine.connect("c1")
    log.consume(10, 0)
    publisher = engine.connect("p1")
    timer = threading.Timer(0.2, publisher.publish, args=(_records(1),))
    timer.start()
    try:
        started = time.monotonic()
        got = log.consume(10, 5.0)
        took = time.monotonic() - started
    finally:
        timer.join()
    assert _ids(got) == ["e0"]
    assert took < 2.0, f"{engine.kind} returned a record published at 0.2 s after {took:.2f} s"
    log.acknowledge(got)


def test_a_read_takes_at_most_what_it_asks_for_and_what_is_there(engine: Engine) -> None:
    log = engine.connect("c1")
    log.publish(_records(5))
    first = log.consume(2, 1.0)
    assert _ids(first) == ["e0", "e1"]
    rest = log.consume(100, 1.0)  # more than there is: what is there, in order
    assert _ids(rest) == ["e2", "e3", "e4"]
    assert log.consume(100, 0) == []
    log.acknowledge(first + rest)


def test_acknowledging_twice_changes_nothing(engine: Engine) -> None:
    log = engine.connect("c1")
    log.publish(_records(4))
    got = _drain(log, 4)
    log.acknowledge(got)
    log.acknowledge(got)
    log.acknowledge(got[:1])
    log.close()
    again = engine.connect("c1")
    again.publish(_records(6, 4))
    assert _ids(_drain(again, 2)) == ["e4", "e5"]
    assert again.consume(10, 0) == []


def test_acknowledging_a_delivery_the_log_never_handed_out_is_ignored(engine: Engine) -> None:
    log = engine.connect("c1")
    strangers = [
        Delivery("no-such-entry", b"{}", "ghost"),
        Delivery("999999", b"{}", "ghost"),
        Delivery("0-999999", b"{}", "ghost"),
        Delivery("999999-0", b"{}", "ghost"),
    ]
    log.acknowledge(strangers)  # before anything was published
    log.publish(_records(3))
    got = _drain(log, 3)
    log.acknowledge(strangers)  # while three are pending
    assert _ids(got) == ["e0", "e1", "e2"]
    log.acknowledge(got[:1])
    log.close()
    again = engine.connect("c1")
    redelivered = _drain(again, 2)
    assert _ids(redelivered) == ["e1", "e2"]  # the strangers acknowledged none of them
    again.acknowledge(redelivered)


def test_a_restarted_consumer_resumes_from_its_saved_position(engine: Engine) -> None:
    _stopped(engine, 10, lambda got: got[:4]).close()
    again = engine.connect("c1")
    redelivered = _drain(again, 6)
    assert _ids(redelivered) == [f"e{i}" for i in range(4, 10)]
    assert all(d.deliveries >= 2 for d in redelivered) or engine.kind in ("jsonl", "sql")
    again.acknowledge(redelivered)
    again.publish(_records(12, 10))
    assert _ids(_drain(again, 2)) == ["e10", "e11"]


def test_acknowledged_entries_past_a_gap_may_come_again_unacknowledged_ones_must(
    engine: Engine,
) -> None:
    _stopped(engine, 8, lambda got: got[:2] + got[5:6]).close()  # e0, e1, e5: a gap at e2
    again = engine.connect("c1")
    ids = set(_ids(_drain(again, 5)))
    # at least once: every unacknowledged entry; never the acknowledged prefix
    assert {"e2", "e3", "e4", "e6", "e7"} <= ids <= {f"e{i}" for i in range(2, 8)}


def test_another_consumer_takes_over_unacknowledged_entries_after_the_claim_time(
    engine: Engine,
) -> None:
    _stopped(engine, 10, lambda got: got[:4])  # stops without a word, still connected
    other = engine.connect("c2")
    taken = _drain(other, 6)
    assert sorted(_ids(taken), key=lambda i: int(str(i)[1:])) == [f"e{i}" for i in range(4, 10)]
    other.acknowledge(taken)
    other.publish(_records(11, 10))
    assert _ids(_drain(other, 1)) == ["e10"]


def test_bad_arguments_get_typed_errors(engine: Engine) -> None:
    log = engine.connect("c1")
    for max_messages, timeout_s in [(0, 0.1), (-1, 0.1), (True, 0.1), (10, -1.0), (10, 1e9)]:
        with pytest.raises(InvalidInputError):
            log.consume(max_messages, timeout_s)


def test_a_malformed_message_is_parked_and_the_consumer_goes_on(
    engine: Engine, tmp_path: Path
) -> None:
    log = engine.connect("c1")
    views = [product_viewed("tee", Money.of("1.00", "EUR"), customer_id=f"c{i}") for i in range(3)]
    records = [LogRecord(v.event_id, v.to_bytes()) for v in views]
    records.insert(1, LogRecord("bad-1", b"this is not an event"))
    log.publish(records)
    store = AnalyticsStore(
        Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db"))))
    )
    store.create()
    consumer = AnalyticsConsumer(log, store, poll_timeout_s=0.05)
    assert consumer.run(idle_exit_s=0.1) == 3
    (parked,) = Reports(store).dead_letters()
    assert parked["body"] == "this is not an event"
    assert parked["reason"]
    assert log.consume(10, 0) == []  # parked counts as handled: acknowledged


class _BlipStore(AnalyticsStore):
    """A store whose first batch meets a database that is briefly down."""

    blips = 1

    def apply(self, deliveries: Sequence[Delivery]) -> ApplyResult:
        if self.blips:
            self.blips -= 1
            raise UnavailableError("the database blinked")
        return super().apply(deliveries)


def test_a_batch_that_failed_for_a_moment_is_applied_without_a_restart(
    engine: Engine, tmp_path: Path
) -> None:
    log = engine.connect("c1")
    views = [product_viewed("tee", Money.of("1.00", "EUR"), customer_id=f"c{i}") for i in range(6)]
    log.publish([LogRecord(v.event_id, v.to_bytes()) for v in views])
    store = _BlipStore(Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db")))))
    store.create()
    consumer = AnalyticsConsumer(log, store, batch_size=3, poll_timeout_s=0.05, sleep=_no_wait)
    assert consumer.run(idle_exit_s=0.1) == 6
    assert Reports(store).top_products("viewed")[0].count == 6


def _no_wait(seconds: float) -> None:
    pass


@pytest.mark.parametrize("kind", KINDS)
def test_a_republished_event_id_comes_once_where_the_engine_drops_duplicates(
    kind: str, tmp_path: Path
) -> None:
    with open_engine(kind, tmp_path, dedupe=True) as engine:
        log = engine.connect("c1")
        log.publish(_records(5))
        log.publish(_records(5))  # a relay that crashed before marking sent
        want = [f"e{i}" for i in range(5)]
        if not engine.dedupes:
            want += want  # at least once: the consumer drops them by event id
        got = _drain(log, len(want))
        assert _ids(got) == want
        log.acknowledge(got)
        assert log.consume(10, 0) == []


def test_the_fakes_claim_time_runs_on_its_clock() -> None:
    clock = ManualClock(0.0)
    dead = InMemoryEventLog(consumer="c1", claim_idle_s=30.0, clock=clock)
    dead.publish(_records(3))
    got = dead.consume(10, 0)
    dead.acknowledge(got[:1])
    other = dead.connect(consumer="c2")
    clock.advance(29.9)
    assert other.consume(10, 0) == []  # e1 and e2 are still c1's
    assert other.lag() == 2
    clock.advance(0.1)
    taken = other.consume(10, 0)
    assert [(d.event_id, d.deliveries) for d in taken] == [("e1", 2), ("e2", 2)]
    other.acknowledge(taken)
    assert other.lag() == 0
    assert [r.event_id for r in other.records] == ["e0", "e1", "e2"]
