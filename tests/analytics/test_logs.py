"""``open_log`` URLs: an absolute SQLite path keeps its leading slash, relative stays relative."""

from __future__ import annotations

from pathlib import Path

import pytest

from commercekit.analytics import JsonLinesLog, LogRecord, SqlEventLog, open_log


def _round_trip(log: object) -> None:
    assert isinstance(log, SqlEventLog | JsonLinesLog)
    log.publish([LogRecord("e1", b"{}")])
    assert [d.event_id for d in log.consume(10, 0)] == ["e1"]
    log.close()


def test_an_absolute_sqlite_path_keeps_its_leading_slash(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "log.db"
    path.parent.mkdir()
    _round_trip(open_log(f"sqlite:///{path}?group=g"))  # sqlite:////tmp/...
    assert path.exists()


def test_relative_paths_stay_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _round_trip(open_log("sqlite:///rel.db?group=g"))
    _round_trip(open_log("sql+sqlite:///rel2.db"))
    _round_trip(open_log("jsonl://events/e.jsonl"))
    assert {p.name for p in tmp_path.rglob("*") if p.is_file()} >= {"rel.db", "rel2.db", "e.jsonl"}


def test_a_sql_log_that_cannot_be_reached_raises_unavailable(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from commercekit.analytics import Delivery
    from commercekit.errors import UnavailableError

    log = SqlEventLog(create_engine(f"sqlite:///{tmp_path / 'missing' / 'log.db'}"))
    with pytest.raises(UnavailableError):
        log.consume(10, 0)
    with pytest.raises(UnavailableError):
        log.acknowledge([Delivery("1", b"{}", "e1")])
    with pytest.raises(UnavailableError):
        log.publish([LogRecord("e1", b"{}")])


def test_a_json_lines_log_that_cannot_be_read_raises_unavailable(tmp_path: Path) -> None:
    from commercekit.analytics import Delivery
    from commercekit.errors import UnavailableError

    log = JsonLinesLog(tmp_path / "e.jsonl")
    log.publish([LogRecord("e1", b"{}")])
    (got,) = log.consume(10, 0)
    (tmp_path / "e.jsonl").unlink()
    (tmp_path / "e.jsonl").mkdir()  # the path is no longer a readable file
    (tmp_path / "e.jsonl.analytics.offset").mkdir()  # nor its offset a writable file
    blocked = JsonLinesLog(tmp_path / "e.jsonl")
    with pytest.raises(UnavailableError):
        blocked.consume(10, 0)
    with pytest.raises(UnavailableError):
        blocked.publish([LogRecord("e2", b"{}")])
    with pytest.raises(UnavailableError):
        log.acknowledge([got, Delivery("x", b"")])


def test_a_redis_stream_that_lost_its_group_is_unavailable_once_then_read_again(
    tmp_path: Path,
) -> None:
    """Redis restarted without persistence, or the stream deleted: NOGROUP, not a raw error."""
    import uuid

    import redis

    from commercekit.analytics import RedisStreamsLog
    from commercekit.errors import ConfigurationError, UnavailableError
    from tests.contract.test_eventlog_contract import REDIS_URL, _redis_up

    _redis_up()
    name = f"ck_test_{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(REDIS_URL)
    log = RedisStreamsLog(REDIS_URL, stream=name, consumer="c1")
    try:
        log.publish([LogRecord("e1", b"{}")])
        got = log.consume(10, 0)
        assert [d.event_id for d in got] == ["e1"]
        client.delete(name)  # the stream and its group are gone
        with pytest.raises(UnavailableError, match="NOGROUP"):
            log.consume(10, 0)
        log.publish([LogRecord("e2", b"{}")])
        assert [d.event_id for d in log.consume(10, 0)] == ["e2"]  # the group was made again
        client.delete(name)
        client.set(name, "not a stream")
        with pytest.raises(ConfigurationError, match="not a stream"):
            log.publish([LogRecord("e3", b"{}")])
    finally:
        log.close()
        client.delete(name)
        client.close()


@pytest.mark.parametrize("url", ["sqlite", "postgresql"])
def test_a_sql_log_without_its_tables_says_to_create_them(url: str, tmp_path: Path) -> None:
    """No table is no outage: waiting never makes it (SQLite said UnavailableError, so the
    consumer and the relay backed off for ever; PostgreSQL a bare RepositoryError)."""
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy import exc as sa_exc

    from commercekit.errors import ConfigurationError

    if url == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'log.db'}")
    else:
        from tests.conftest import missing_service

        engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
        try:
            engine.connect().close()
        except (sa_exc.OperationalError, ImportError) as exc:
            missing_service(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({exc})")
    log = SqlEventLog(engine, prefix=f"ck_missing_{uuid.uuid4().hex[:8]}_")
    try:
        with pytest.raises(ConfigurationError, match=r"create\(\)"):
            log.consume(10, 0)
        with pytest.raises(ConfigurationError, match=r"create\(\)"):
            log.publish([LogRecord("e1", b"{}")])
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_sql_log_reader_never_skips_a_message_committed_after_a_later_one(kind: str) -> None:
    """Two publishers at once: the first has inserted (sequence 1) and not committed yet when
    the second publishes. The second now waits for the first, so its message commits after
    1. Before, it committed as 2 at once, the reader read it, and, past 2, never read 1 (until
    a restart read from the group's offset again)."""
    import threading
    import time

    from sqlalchemy import event

    from tests.repository.test_outbox import _server_db

    for engine in _server_db(kind):
        log = SqlEventLog(engine)
        log.create()
        go = threading.Event()
        first = threading.Thread(target=log.publish, args=([LogRecord("first", b"1")],))

        @event.listens_for(engine, "commit")
        def hold(conn: object, first: threading.Thread = first, go: threading.Event = go) -> None:
            if threading.current_thread() is first and not go.is_set():
                go.wait(10)  # the first publisher's commit waits for the test

        first.start()
        time.sleep(0.3)  # inserted, at its commit
        second = threading.Thread(target=log.publish, args=([LogRecord("second", b"2")],))
        second.start()
        time.sleep(0.3)  # committed (before), or waiting for the first (now)
        read = [d.event_id for d in log.consume(10, 0)]
        go.set()
        first.join(10)
        second.join(10)
        read += [d.event_id for d in log.consume(10, 0.5)]
        read += [d.event_id for d in log.consume(10, 0.5)]
        assert sorted(read) == ["first", "second"], read
