"""HttpOrigin and the HTTP purgers: a pool owned by the event loop of its first call.

Kept past ``asyncio.run()`` they neither hold nor leak sockets, a later loop
gets a new pool (not "Event loop is closed"), and ``async with`` closes them.
"""

from __future__ import annotations

import asyncio
import gc
import json
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

from commercekit.cdn import (
    AwsCredentials,
    CloudFrontPurger,
    FastlyPurger,
    HttpOrigin,
    PurgeSelector,
    Request,
)
from commercekit.errors import UnavailableError, is_transient
from tests._loops import call_as_the_loop_finalizes

from ._loopback import Answer, LoopbackServer, Seen


def _ok(seen: Seen) -> Answer:
    return 200, {"content-type": "application/json"}, json.dumps({"status": "ok"}).encode()


def _twice_without_leaks(
    make: Callable[[str], Any], call: Callable[[Any, str], Coroutine[Any, Any, None]]
) -> None:
    with LoopbackServer(_ok) as server, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = make(server.url)
        asyncio.run(call(client, server.url))
        asyncio.run(call(client, server.url))  # a new loop: a new pool, not "loop is closed"
        del client
        gc.collect()
        assert len(server.seen) == 2
    assert [str(w.message) for w in caught] == []


def test_an_origin_serves_a_second_event_loop_and_leaks_nothing() -> None:
    async def fetch(origin: HttpOrigin, url: str) -> None:
        assert (await origin.fetch(Request("GET", url + "/x"))).status == 200

    _twice_without_leaks(HttpOrigin, fetch)


def test_a_purger_serves_a_second_event_loop_and_leaks_nothing() -> None:
    async def purge(purger: FastlyPurger, url: str) -> None:
        await purger.purge(PurgeSelector.everything())

    _twice_without_leaks(lambda url: FastlyPurger("svc", "token", base_url=url), purge)


def test_async_with_closes_them() -> None:
    """Each block's end closes the client there and then, not the loop's shutdown later."""

    async def main(url: str) -> None:
        async with HttpOrigin(url) as origin:
            assert (await origin.fetch(Request("GET", url + "/x"))).status == 200
            client = origin._pooled.pool
            assert client is not None
            assert not client.is_closed
        assert client.is_closed
        assert origin._pooled.pool is None
        assert origin._fresh.pool is None
        async with FastlyPurger("svc", "token", base_url=url) as purger:
            await purger.purge(PurgeSelector.everything())
            client = purger._pooled.pool
            assert client is not None
            assert not client.is_closed
        assert client.is_closed
        assert purger._pooled.pool is None
        async with HttpOrigin(url) as unused:  # never called: nothing to close, no error
            assert unused._pooled.pool is None

    with LoopbackServer(_ok) as server:
        asyncio.run(main(server.url))
        assert len(server.seen) == 2


def test_a_call_as_asyncio_run_finalizes_async_generators_is_refused_unsent() -> None:
    """From an async generator's ``finally`` at the loop's end: nothing sent, typed, no leak."""

    async def first(origin: HttpOrigin) -> None:
        assert (await origin.fetch(Request("GET", server.url + "/x"))).status == 200

    async def late(origin: HttpOrigin) -> int:
        return (await origin.fetch(Request("GET", server.url + "/late"))).status

    with LoopbackServer(_ok) as server:
        call = call_as_the_loop_finalizes(lambda: HttpOrigin(server.url), late, first=first)
        assert [s.path for s in server.seen] == ["/x"]
    assert isinstance(call.outcome, UnavailableError)
    assert is_transient(call.outcome)
    assert call.warnings == []


def test_cloudfront_purges_at_once_on_a_second_event_loop() -> None:
    def handler(seen: Seen) -> Answer:
        if seen.method == "POST":
            body = b"<Invalidation><Id>I1</Id><Status>InProgress</Status></Invalidation>"
            return 201, {}, body
        return 200, {}, b"<Invalidation><Status>Completed</Status></Invalidation>"

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(0)

    async def two_at_once(purger: CloudFrontPurger) -> None:
        await asyncio.gather(
            purger.purge(PurgeSelector.urls("/a")), purger.purge(PurgeSelector.urls("/b"))
        )

    with LoopbackServer(handler) as server:
        purger = CloudFrontPurger(
            "E1", AwsCredentials("AKID", "sk"), base_url=server.url, sleep=sleep,
            max_paths_in_progress=1, poll_interval_s=1,
        )  # fmt: skip
        asyncio.run(two_at_once(purger))
        asyncio.run(two_at_once(purger))  # its lock was bound to the first loop
        assert len([s for s in server.seen if s.method == "POST"]) == 4
