"""JetStreamLog's refusals: a wrong password or a user without the JetStream permissions
is a ConfigurationError that says what to fix (never the password), not an outage.

nats-py reports both only to an error callback (a permission violation) or by
retrying the connection (an authorization violation), so the log's calls
used to time out into UnavailableError and the consumer backed off forever.
Each test runs a nats-server of its own with two users, on a free loopback port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from commercekit.analytics import LogRecord
from commercekit.errors import ConfigurationError, TransientError
from tests.conftest import missing_service
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``host:port`` of a nats-server with JetStream, user ``ok`` and user ``nojs`` (no API)."""
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(binary).exists():
        missing_service("nats-server is not installed (Debian package nats-server)")
    port = free_port()
    conf = tmp_path / "nats.conf"
    conf.write_text(
        f"listen: 127.0.0.1:{port}\nmax_payload: 65536\n"
        f'jetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
        "authorization { users = [\n"
        "  {user: ok, password: right-one}\n"
        '  {user: nojs, password: right-one, permissions: {publish: {deny: ["$JS.API.>"]}}}\n'
        "] }\n"
    )
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def _log(url: str) -> object:
    from commercekit.analytics import JetStreamLog

    return JetStreamLog(url, stream="ck_refused", timeout_s=2)


def test_a_wrong_password_is_a_configuration_error_that_keeps_it_secret(server: str) -> None:
    log = _log(f"nats://ok:wrong-one@{server}")
    started = time.monotonic()
    try:
        with pytest.raises(ConfigurationError, match="password") as caught:
            log.publish([LogRecord("e1", b"{}")])  # type: ignore[attr-defined]
        assert not isinstance(caught.value, TransientError)
        assert "wrong-one" not in str(caught.value)
        assert time.monotonic() - started < 4  # not after the call's whole timeout
    finally:
        log.close()  # type: ignore[attr-defined]


def test_a_user_without_the_jetstream_api_is_a_configuration_error(server: str) -> None:
    log = _log(f"nats://nojs:right-one@{server}")
    try:
        with pytest.raises(ConfigurationError, match=r"\$JS\.API") as caught:
            log.consume(10, 0)  # type: ignore[attr-defined]
        assert "right-one" not in str(caught.value)
    finally:
        log.close()  # type: ignore[attr-defined]


def test_a_user_with_the_permissions_publishes_and_consumes(server: str) -> None:
    log = _log(f"nats://ok:right-one@{server}")
    try:
        log.publish([LogRecord("e1", b"{}")])  # type: ignore[attr-defined]
        assert [d.event_id for d in log.consume(10, 1)] == ["e1"]  # type: ignore[attr-defined]
    finally:
        log.close()  # type: ignore[attr-defined]


def test_an_unreachable_server_stays_unavailable_and_its_url_keeps_the_password() -> None:
    from commercekit.errors import UnavailableError

    log = _log(f"nats://ok:right-one@127.0.0.1:{free_port()}")
    try:
        with pytest.raises(UnavailableError) as caught:
            log.publish([LogRecord("e1", b"{}")])  # type: ignore[attr-defined]
        assert "right-one" not in str(caught.value)
    finally:
        log.close()  # type: ignore[attr-defined]


def test_a_stream_whose_subject_another_stream_holds_is_a_configuration_error(
    server: str,
) -> None:
    url = f"nats://ok:right-one@{server}"
    from commercekit.analytics import JetStreamLog

    first = JetStreamLog(url, stream="ck_first", subject="ck.shared", timeout_s=2)
    second = JetStreamLog(url, stream="ck_second", subject="ck.shared", timeout_s=2)
    try:
        first.publish([LogRecord("e1", b"{}")])
        with pytest.raises(ConfigurationError, match=r"ck\.shared"):
            second.publish([LogRecord("e2", b"{}")])
    finally:
        first.close()
        second.close()


def test_a_stream_that_is_gone_is_made_again_like_a_lost_redis_group(server: str) -> None:
    """The stream deleted (or a server that lost its store): publish and consume say
    UnavailableError once, then make the stream and the durable consumer again, as
    RedisStreamsLog does after NOGROUP; they used to fail, or read nothing, forever."""
    from commercekit.analytics import JetStreamLog
    from commercekit.errors import UnavailableError

    url = f"nats://ok:right-one@{server}"
    relay = JetStreamLog(url, stream="ck_gone", timeout_s=2)
    consumer = JetStreamLog(url, stream="ck_gone", timeout_s=2)
    try:
        relay.publish([LogRecord("e1", b"{}")])
        assert [d.event_id for d in consumer.consume(10, 0.5)] == ["e1"]
        relay.delete_stream()
        with pytest.raises(UnavailableError, match="ck_gone"):
            relay.publish([LogRecord("e2", b"{}")])
        relay.publish([LogRecord("e2", b"{}")])  # the stream was made again
        with pytest.raises(UnavailableError, match="ck_gone"):
            consumer.consume(10, 0.2)
        assert [d.event_id for d in consumer.consume(10, 0.5)] == ["e2"]
    finally:
        relay.close()
        consumer.close()


def test_a_record_over_the_servers_max_payload_is_refused_for_good(server: str) -> None:
    """JetStream will never take it: an InvalidInputError naming the event, not an outage the
    relay waits out for ever."""
    from commercekit.errors import InvalidInputError

    log = _log(f"nats://ok:right-one@{server}")
    try:
        log.publish([LogRecord("small", b"{}")])  # type: ignore[attr-defined]
        with pytest.raises(InvalidInputError, match="big-one") as caught:
            log.publish([LogRecord("big-one", b"x" * 70_000)])  # type: ignore[attr-defined]
        assert not isinstance(caught.value, TransientError)
    finally:
        log.close()  # type: ignore[attr-defined]


def test_a_consumer_reads_its_lag_without_a_round_trip_per_batch_or_empty_fetch(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lag after a batch comes from the fetched messages' metadata, and an idle consumer
    looks its durable consumer up once an idle stretch, not once per empty fetch; the lag gauge
    still ends at 0 and follows a new backlog."""
    from commercekit.analytics import AnalyticsConsumer, AnalyticsStore, JetStreamLog
    from commercekit.testing import InMemoryMetrics
    from tests.analytics.test_consumer import _store, _views

    # the idle looks every 5 s (the log's and the consumer's) kept out of a slow machine's run
    monkeypatch.setattr("commercekit.analytics._logs._nats._LOOK_EVERY_S", 3600.0)
    monkeypatch.setattr("commercekit.analytics._pipeline._consumer._IDLE_LAG_EVERY_S", 3600.0)
    url = f"nats://ok:right-one@{server}"
    relay = JetStreamLog(url, stream="ck_lag", timeout_s=2)
    log = JetStreamLog(url, stream="ck_lag", timeout_s=2)
    metrics = InMemoryMetrics()
    consumer = AnalyticsConsumer(
        log, _store(AnalyticsStore, tmp_path), batch_size=10, poll_timeout_s=0.05, metrics=metrics
    )
    try:
        relay.publish([LogRecord(e.event_id, e.to_bytes()) for e in _views(25)])
        assert consumer.run_once().applied == 10  # connects and subscribes
        asked: list[str] = []
        real = log._nc.request

        async def request(subject: str, *args: object, **kwargs: object) -> object:
            asked.append(subject)
            return await real(subject, *args, **kwargs)

        log._nc.request = request
        assert metrics.value("commercekit_analytics_consumer_lag", log="default") == 15
        assert consumer.run_once().applied == 10
        assert metrics.value("commercekit_analytics_consumer_lag", log="default") == 5
        assert consumer.run_once().applied == 5
        assert metrics.value("commercekit_analytics_consumer_lag", log="default") == 0
        for _ in range(5):
            assert consumer.run_once().applied == 0
        assert [s for s in asked if ".CONSUMER.INFO." in s] == [asked[0]]  # one look, idle
        monkeypatch.setattr("commercekit.analytics._logs._nats._LOOK_EVERY_S", 0.0)
        assert consumer.run_once().applied == 0
        assert len([s for s in asked if ".CONSUMER.INFO." in s]) == 2  # and again in a while
        relay.publish([LogRecord(e.event_id, e.to_bytes()) for e in _views(12, prefix="n")])
        assert consumer.run_once().applied == 10
        assert metrics.value("commercekit_analytics_consumer_lag", log="default") == 2
        assert consumer.run_once().applied == 2
        assert metrics.value("commercekit_analytics_consumer_lag", log="default") == 0
        assert log.lag() == log.pending() == 0
    finally:
        relay.close()
        log.close()


def test_a_fetch_that_brings_more_than_asked_hands_out_the_rest_next(
    server: str, tmp_path: Path
) -> None:
    """nats-py's fetch hands out every message its queue holds, answers to earlier pulls that
    timed out included, which can be more than asked: a read still takes at most what it
    asks for, and the rest comes first in the next read, counted in the lag meanwhile."""
    from commercekit.analytics import JetStreamLog

    log = JetStreamLog(f"nats://ok:right-one@{server}", stream="ck_more", timeout_s=2)
    try:
        log.publish([LogRecord(f"e{i}", b"{}") for i in range(12)])
        assert log.consume(1, 1.0)[0].event_id == "e0"
        real = log._sub.fetch

        async def more(batch: int, timeout: float) -> object:  # as after a timed-out pull
            return await real(batch + 2, timeout=timeout)

        log._sub.fetch = more
        first = log.consume(5, 1.0)
        assert [d.event_id for d in first] == ["e1", "e2", "e3", "e4", "e5"]
        assert log.lag() == 12  # 6 handed out, not acknowledged; 2 held here; 4 unread
        second = log.consume(5, 1.0)
        assert [d.event_id for d in second][:2] == ["e6", "e7"]
        log.acknowledge(first + second)
        rest = log.consume(10, 1.0)
        log.acknowledge(rest)
        got = [d.event_id for d in first + second + rest]
        assert sorted(got, key=lambda e: int(e[1:])) == [f"e{i}" for i in range(1, 12)]
        assert len(got) == len(set(got))
    finally:
        log.close()
