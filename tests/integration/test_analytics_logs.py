"""Every EventLog engine keeps the same contract: in order, at least once, acked once.

Redis Streams and NATS JetStream are the machine's servers (unique stream
names per test, deleted after); the JSON-lines and SQL logs are files.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from commercekit.analytics import EventLog, JsonLinesLog, LogRecord, SqlEventLog
from commercekit.repository import sqlite_engine
from tests.conftest import missing_service

REDIS_URL = "redis://127.0.0.1:6379/0"
NATS_URL = "nats://127.0.0.1:4222"

Factory = Callable[[str], EventLog]  # consumer name -> a log on the test's stream


def _redis_up() -> None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        missing_service(f"Redis at 127.0.0.1:6379 is not reachable: {exc}")


def _nats_up() -> None:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
    except OSError as exc:
        missing_service(f"NATS at 127.0.0.1:4222 is not reachable: {exc}")


@pytest.fixture(params=["jsonl", "sql", "redis", "nats"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    name = f"ck_test_{uuid.uuid4().hex[:10]}"
    opened: list[Any] = []
    kind = request.param
    if kind == "jsonl":

        def make(consumer: str) -> EventLog:
            return JsonLinesLog(tmp_path / "log.jsonl")

    elif kind == "sql":
        engine = sqlite_engine(tmp_path / "log.db")

        def make(consumer: str) -> EventLog:
            log = SqlEventLog(engine)
            log.create()
            return log

    elif kind == "redis":
        _redis_up()
        from commercekit.analytics import RedisStreamsLog

        def make(consumer: str) -> EventLog:
            log = RedisStreamsLog(REDIS_URL, stream=name, consumer=consumer, claim_idle_s=0.2)
            opened.append(log)
            return log

    else:
        _nats_up()
        from commercekit.analytics import JetStreamLog

        def make(consumer: str) -> EventLog:
            log = JetStreamLog(NATS_URL, stream=name, ack_wait_s=1.0)
            opened.append(log)
            return log

    yield make
    if kind == "redis":
        import redis

        redis.Redis.from_url(REDIS_URL).delete(name)
    for log in opened:
        log.close()
    if kind == "nats":
        from commercekit.analytics import JetStreamLog

        cleaner = JetStreamLog(NATS_URL, stream=name)
        cleaner.delete_stream()
        cleaner.close()


def _records(n: int, start: int = 0) -> list[LogRecord]:
    return [LogRecord(f"e{i}", f'{{"n":{i}}}'.encode(), key=f"k{i % 3}") for i in range(start, n)]


def _drain(log: EventLog, want: int, rounds: int = 50) -> list[Any]:
    got: list[Any] = []
    for _ in range(rounds):
        batch = log.consume(100, 0.2)
        got.extend(batch)
        if len(got) >= want:
            break
    return got


def test_published_records_arrive_in_order_with_their_ids(factory: Factory) -> None:
    log = factory("c1")
    log.publish(_records(30))
    got = _drain(log, 30)
    assert [d.event_id for d in got] == [f"e{i}" for i in range(30)]
    assert got[5].body == b'{"n":5}'
    log.acknowledge(got)
    assert log.consume(100, 0.1) == []


def test_unacknowledged_deliveries_come_again_after_a_restart(factory: Factory) -> None:
    first = factory("c1")
    first.publish(_records(10))
    got = _drain(first, 10)
    first.acknowledge(got[:4])
    first.close()
    import time

    time.sleep(1.2)  # past the NATS ack wait and the Redis claim idle time
    again = factory("c1")
    redelivered = _drain(again, 6)
    assert sorted(d.event_id for d in redelivered) == [f"e{i}" for i in range(4, 10)]
    again.acknowledge(redelivered)
    again.publish(_records(12, 10))
    assert [d.event_id for d in _drain(again, 2)] == ["e10", "e11"]


def test_bad_arguments_get_typed_errors(factory: Factory) -> None:
    from commercekit.errors import InvalidInputError

    log = factory("c1")
    with pytest.raises(InvalidInputError):
        log.consume(0, 0.1)


def test_jetstream_drops_a_republished_event_id() -> None:
    _nats_up()
    from commercekit.analytics import JetStreamLog

    log = JetStreamLog(NATS_URL, stream=f"ck_test_{uuid.uuid4().hex[:10]}", ack_wait_s=1.0)
    try:
        log.publish(_records(20))
        log.publish(_records(20))  # a relay that crashed before marking sent
        assert log.stream_messages() == 20
        assert [d.event_id for d in _drain(log, 20)] == [f"e{i}" for i in range(20)]
    finally:
        log.delete_stream()
        log.close()
