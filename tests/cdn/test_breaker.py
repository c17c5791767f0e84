"""The circuit breaker in front of a failing store, and the tiered store around it."""

from __future__ import annotations

import asyncio
import socket

import pytest

from commercekit.cdn import (
    Breaker,
    EdgeCache,
    Headers,
    MemoryStore,
    MockOrigin,
    RedisStore,
    Request,
    Response,
    TieredStore,
)
from commercekit.errors import ConfigurationError, StoreUnavailableError
from commercekit.metrics import InMemoryMetrics


def test_breaker_opens_after_failures_in_a_row_and_probes_once() -> None:
    now = [0.0]
    opened: list[float] = []
    breaker = Breaker(
        failures=3, reset_s=1.0, clock=lambda: now[0], on_open=lambda: opened.append(1)
    )
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.allow()
    breaker.success()  # a success resets the count
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.is_open
    assert not breaker.allow()
    assert len(opened) == 1
    now[0] = 1.0
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one
    breaker.failure()
    assert len(opened) == 2
    assert not breaker.allow()
    now[0] = 2.5
    assert breaker.allow()
    breaker.success()
    assert not breaker.is_open
    assert breaker.allow()


@pytest.mark.parametrize("kwargs", [{"failures": 0}, {"reset_s": 0.0}, {"reset_s": float("nan")}])
def test_breaker_settings_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        Breaker(**kwargs)  # type: ignore[arg-type]


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when this returns: nothing listens there


def test_redis_store_options_are_checked() -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(f"redis://127.0.0.1:{_dead_port()}/0")
    for bad in ({"timeout_s": 0}, {"max_entry_bytes": 0}, {"max_variants": 0}):
        with pytest.raises(ConfigurationError):
            RedisStore(client, **bad)  # type: ignore[arg-type]


def test_dead_far_store_is_skipped_by_its_breaker_and_the_near_tier_serves() -> None:
    from redis.asyncio import Redis

    async def main() -> None:
        metrics = InMemoryMetrics()
        client = Redis.from_url(f"redis://127.0.0.1:{_dead_port()}/0")
        far = RedisStore(
            client,
            timeout_s=0.5,
            breaker_failures=2,
            breaker_reset_s=60,
            metrics=metrics,
        )
        origin = MockOrigin(
            lambda r: Response(200, Headers({"cache-control": "max-age=60"}), b"img")
        )
        async with EdgeCache(
            origin, TieredStore(MemoryStore(1 << 20), far, metrics=metrics)
        ) as edge:
            for _ in range(20):
                assert (await edge.get("http://shop.test/a.jpg")).body == b"img"
            assert len(origin.requests) == 1  # the near tier kept it
            assert far.breaker.is_open
            asked: list[object] = []  # connections asked of the client's pool while open
            pool = client.connection_pool
            connect = pool.get_connection

            async def counted(*args: object, **kwargs: object) -> object:
                asked.append(args)
                return await connect(*args, **kwargs)

            pool.get_connection = counted  # type: ignore[method-assign]
            with pytest.raises(StoreUnavailableError, match="breaker"):
                await far.get("http://shop.test/a.jpg")
            assert asked == []  # no I/O while open (not a timing: a loaded machine is slow)
            pool.get_connection = connect  # type: ignore[method-assign]
            # an unsafe request still answers with the origin's response
            post = await edge.handle(Request("POST", "http://shop.test/a.jpg", Headers(), b"x"))
            assert post.status == 200
        assert metrics.value("commercekit_cdn_store_breaker_opened_total", store=far.namespace) == 1

    asyncio.run(main())
