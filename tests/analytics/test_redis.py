"""RedisStreamsLog's refusals: what a retry cannot fix is a ConfigurationError saying what to fix.

A user without the permissions the log needs, a wrong password and a Redis
too old for ``XAUTOCLAIM`` are set-up mistakes: the consumer must stop with
a typed error that says how to fix them, not back off forever as if Redis
were down. Each runs against the machine's Redis with a user of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from commercekit.analytics import AnalyticsConsumer, AnalyticsStore, LogRecord
from commercekit.errors import ConfigurationError, TransientError
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine
from tests.contract.test_eventlog_contract import REDIS_URL, _redis_up

pytestmark = pytest.mark.integration


@pytest.fixture
def admin() -> Iterator[Any]:
    _redis_up()
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def stream(admin: Any) -> Iterator[str]:
    name = f"ck_test_{uuid.uuid4().hex[:10]}"
    yield name
    admin.delete(name)


@pytest.fixture
def user(admin: Any) -> Iterator[str]:
    name = f"ck_test_{uuid.uuid4().hex[:8]}"
    yield name
    admin.execute_command("ACL", "DELUSER", name)


def _url(user: str, password: str) -> str:
    return REDIS_URL.replace("redis://", f"redis://{user}:{password}@")


def _log(url: str, stream: str, consumer: str = "c1") -> Any:
    from commercekit.analytics import RedisStreamsLog

    return RedisStreamsLog(url, stream=stream, consumer=consumer)


def test_a_user_that_may_not_read_the_stream_is_a_configuration_error(
    admin: Any, user: str, stream: str
) -> None:
    admin.execute_command(
        "ACL", "SETUSER", user, "on", ">pw", "~*", "+@all", "-xreadgroup", "-xautoclaim"
    )
    log = _log(_url(user, "pw"), stream)
    try:
        log.publish([LogRecord("e1", b"{}")])
        with pytest.raises(ConfigurationError, match="ACL SETUSER") as caught:
            log.consume(10, 0)
        assert not isinstance(caught.value, TransientError)
        assert "xreadgroup" in str(caught.value).lower()
    finally:
        log.close()


def test_a_user_that_may_not_touch_the_key_is_a_configuration_error(
    admin: Any, user: str, stream: str
) -> None:
    admin.execute_command("ACL", "SETUSER", user, "on", ">pw", "~other:*", "+@all")
    log = _log(_url(user, "pw"), stream)
    try:
        with pytest.raises(ConfigurationError, match="permission"):
            log.publish([LogRecord("e1", b"{}")])
    finally:
        log.close()


def test_a_wrong_password_is_a_configuration_error_that_keeps_it_secret(
    admin: Any, user: str, stream: str
) -> None:
    admin.execute_command("ACL", "SETUSER", user, "on", ">right-one", "~*", "+@all")
    log = _log(_url(user, "wrong-one"), stream)
    try:
        with pytest.raises(ConfigurationError, match="password") as caught:
            log.consume(10, 0)
        assert "wrong-one" not in str(caught.value)
        assert "right-one" not in str(caught.value)
    finally:
        log.close()


def test_the_consumer_stops_on_a_permission_error_instead_of_backing_off_forever(
    admin: Any, user: str, stream: str, tmp_path: Any
) -> None:
    admin.execute_command("ACL", "SETUSER", user, "on", ">pw", "~*", "+@all", "-xreadgroup")
    log = _log(_url(user, "pw"), stream)
    store = AnalyticsStore(
        Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db"))))
    )
    store.create()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) > 3:
            raise AssertionError(f"the consumer backed off {waits} on a permission error")

    try:
        with pytest.raises(ConfigurationError):
            AnalyticsConsumer(log, store, poll_timeout_s=0, sleep=sleep).run(idle_exit_s=0)
        assert waits == []
    finally:
        log.close()


def test_a_redis_without_a_command_the_log_needs_is_a_configuration_error(
    admin: Any, stream: str
) -> None:
    """A Redis older than 6.2 answers XAUTOCLAIM with 'unknown command' (the real reply, by
    sending a command this Redis does not know in its place)."""
    import redis

    class OldRedis(redis.Redis):  # type: ignore[type-arg]
        def xautoclaim(self, *args: Any, **kwargs: Any) -> Any:
            return self.execute_command("XAUTOCLAIM-UNKNOWN", stream)

    log = _log(REDIS_URL, stream)
    log._client = OldRedis.from_url(REDIS_URL)
    try:
        log.publish([LogRecord("e1", b"{}")])
        with pytest.raises(ConfigurationError, match=r"6\.2"):
            log.consume(10, 0)
    finally:
        log.close()


def test_a_second_log_on_the_stream_finds_the_group_made(stream: str) -> None:
    first, second = _log(REDIS_URL, stream), _log(REDIS_URL, stream, "c2")
    try:
        first.publish([LogRecord("e1", b"{}")])
        assert [d.event_id for d in first.consume(10, 0)] == ["e1"]
        assert second.consume(10, 0) == []  # BUSYGROUP: the group exists, nothing new
    finally:
        first.close()
        second.close()
