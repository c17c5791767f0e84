"""The pooled aiohttp transport (the async gateways' default) over a real loopback TLS server."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
import warnings
from collections.abc import AsyncIterator, Callable

import pytest

from commercekit.errors import (
    ConfigurationError,
    OutcomeUnknownError,
    UnavailableError,
    is_transient,
)
from commercekit.payments import (
    AiohttpTransport,
    AsyncHttpxTransport,
    AsyncStripeGateway,
    HttpRequest,
    HttpResponse,
)
from commercekit.payments._transports._aiohttp import default_async_transport
from tests._loops import another_loop_holds, call_as_the_loop_finalizes

from .tls_server import tls_server


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _echo_path(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, {"X-Seen": request.url.split("127.0.0.1", 1)[1]}, request.body)


def test_calls_reuse_one_connection_and_send_what_was_built() -> None:
    async def scenario(url: str, context: object) -> None:
        async with AiohttpTransport(ssl_context=context) as transport:  # type: ignore[arg-type]
            for i in range(4):
                answer = await transport.handle(
                    HttpRequest("POST", f"{url}/v1/refunds/re%2F{i}", {"X-Try": str(i)}, b"a" * i)
                )
                assert answer.status == 200
                assert answer.body == b"a" * i
                assert answer.header("x-seen") == f"/v1/refunds/re%2F{i}"  # escapes kept
            session = transport._pool.pool
            assert session is not None
            assert not session.closed
        # The block's end closed it there and then, not the loop's shutdown later.
        assert session.closed
        assert transport._pool.pool is None
        _wait_until(lambda: behaviour.closed == 1)
        assert behaviour.closed == 1

    with tls_server(_echo_path) as (url, certificate, behaviour):
        asyncio.run(scenario(url, certificate.client_context()))
        assert (behaviour.connections, behaviour.requests) == (1, 4)


def test_failures_are_sorted_as_the_seam_promises() -> None:
    async def refused() -> None:
        async with AiohttpTransport() as transport:
            with pytest.raises(UnavailableError, match="nothing was sent"):
                await transport.handle(
                    HttpRequest("GET", f"https://127.0.0.1:{_closed_port()}/", timeout_s=2)
                )
            with pytest.raises(ConfigurationError):
                await transport.handle(HttpRequest("GET", "ftp://127.0.0.1/"))

    asyncio.run(refused())

    async def call(url: str, context: object, timeout_s: float, *, verify: bool = True) -> None:
        async with AiohttpTransport(ssl_context=context if verify else None) as transport:  # type: ignore[arg-type]
            try:
                await transport.handle(
                    HttpRequest("POST", url + "/v1/charges", {"Authorization": "Bearer sk_x"},
                                b"card=4242424242424242", timeout_s=timeout_s)
                )  # fmt: skip
            finally:  # a timed-out TLS connection closes gracefully: let the server answer first
                await asyncio.sleep(0.25 if timeout_s < 1 else 0)

    with tls_server() as (url, certificate, behaviour):
        with pytest.raises(UnavailableError):  # a certificate that does not verify
            asyncio.run(call(url, None, 2, verify=False))
        assert behaviour.requests == 0
        behaviour.drop = True  # read, then closed without an answer
        with pytest.raises(OutcomeUnknownError, match="look it up") as dropped:
            asyncio.run(call(url, certificate.client_context(), 2))
        behaviour.drop, behaviour.delay_s = False, 0.2  # the answer comes too late
        with pytest.raises(OutcomeUnknownError) as late:
            asyncio.run(call(url, certificate.client_context(), 0.05))
    for error in (dropped.value, late.value):
        assert "4242" not in str(error)
        assert "sk_x" not in str(error)
    with pytest.raises(ConfigurationError):
        AiohttpTransport(max_connections=0)


def _wait_until(done: Callable[[], bool]) -> None:
    """Wait (up to 5 s) for the server thread to see what the client did."""
    deadline = time.monotonic() + 5
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_dropped_transport_closes_its_pool_when_collected() -> None:
    async def scenario(url: str, context: object) -> None:
        transport = AiohttpTransport(ssl_context=context)  # type: ignore[arg-type]
        await transport.handle(HttpRequest("GET", url + "/"))
        session = transport._pool.pool
        assert session is not None
        assert not session.closed
        del transport  # no cycle: freed at once, and its loop closes the session
        for _ in range(10):
            await asyncio.sleep(0)
        assert session.closed

    with tls_server() as (url, certificate, behaviour):
        asyncio.run(scenario(url, certificate.client_context()))
        _wait_until(lambda: behaviour.closed == behaviour.connections == 1)
        assert behaviour.closed == 1


def test_a_transport_outliving_its_event_loop_leaves_no_socket_open() -> None:
    async def call(transport: AiohttpTransport, url: str) -> None:
        assert (await transport.handle(HttpRequest("GET", url + "/"))).status == 200

    with tls_server() as (url, certificate, behaviour):
        transport = AiohttpTransport(ssl_context=certificate.client_context())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            asyncio.run(call(transport, url))
            # closed as asyncio.run() shut its loop down, not when collected
            _wait_until(lambda: behaviour.closed == 1)
            assert (behaviour.connections, behaviour.closed) == (1, 1)
            asyncio.run(call(transport, url))  # a new loop: a new pool, closed with it
            _wait_until(lambda: behaviour.closed == 2)
            assert (behaviour.connections, behaviour.closed) == (2, 2)
            del transport
            gc.collect()
        assert [str(w.message) for w in caught] == []


def test_a_loop_closed_by_hand_with_the_pool_open_is_warned_about() -> None:
    with warnings.catch_warnings(record=True) as caught, tls_server() as (url, certificate, _):
        warnings.simplefilter("always")
        transport = AiohttpTransport(ssl_context=certificate.client_context())
        loop = asyncio.new_event_loop()
        loop.run_until_complete(transport.handle(HttpRequest("GET", url + "/")))
        loop.close()  # without loop.shutdown_asyncgens(): nothing can close the sockets cleanly
        del transport, loop
        seen: list[tuple[type[Warning], str]] = []
        for _ in range(5):  # a warning's source keeps its object alive: let each one go
            gc.collect()
            seen += [(w.category, str(w.message)) for w in caught]
            caught.clear()
    ours = [(kind, text) for kind, text in seen if "AiohttpTransport was not closed" in text]
    assert len(ours) == 1
    assert issubclass(ours[0][0], ResourceWarning)
    assert "aclose()" in ours[0][1]


@pytest.mark.parametrize("kind", [AiohttpTransport, AsyncHttpxTransport])
@pytest.mark.parametrize("used_before", [True, False], ids=["pool-open", "first-call"])
def test_a_call_while_asyncio_run_finalizes_async_generators_is_refused_unsent(
    kind: type[AiohttpTransport | AsyncHttpxTransport], used_before: bool
) -> None:
    """A call from an async generator's ``finally`` as ``asyncio.run()`` finalizes it.

    Its loop's pool is being closed (or was, or would never be): the call is
    refused before anything is sent, with an error that says it is safe to
    send again from a live loop, and no pool is left open or warned about.
    """
    sent: list[int] = []

    def after_run(transport: AiohttpTransport | AsyncHttpxTransport) -> None:
        sent.append(behaviour.requests)
        pool = transport._pool.pool
        assert pool is None or (pool.closed if kind is AiohttpTransport else pool.is_closed)

    async def first(transport: AiohttpTransport | AsyncHttpxTransport) -> None:
        if used_before:
            await transport.handle(HttpRequest("GET", url + "/"))

    async def late(transport: AiohttpTransport | AsyncHttpxTransport) -> int:
        # clean-up that calls the provider, as the loop finalizes the generator
        return (await transport.handle(HttpRequest("GET", url))).status

    with tls_server() as (url, certificate, behaviour):
        call = call_as_the_loop_finalizes(
            lambda: kind(ssl_context=certificate.client_context()),
            late,
            first=first,
            after_run=after_run,
        )
        assert sent == [int(used_before)]  # the late call sent nothing
        assert isinstance(call.outcome, UnavailableError)
        assert "nothing was sent" in str(call.outcome)
        assert is_transient(call.outcome)
        _wait_until(lambda: behaviour.closed == behaviour.connections)
        assert behaviour.closed == behaviour.connections
    assert call.resource_warnings == []


@pytest.mark.parametrize("kind", [AiohttpTransport, AsyncHttpxTransport])
@pytest.mark.parametrize("generator_first", [True, False], ids=["generator-first", "pool-first"])
def test_aclose_while_asyncio_run_finalizes_async_generators_closes_once(
    kind: type[AiohttpTransport | AsyncHttpxTransport], generator_first: bool
) -> None:
    """``aclose()`` from a ``finally`` as the loop also closes the pool: no error either side."""
    errors: list[object] = []
    held: list[AsyncIterator[int]] = []
    with tls_server() as (url, certificate, behaviour):
        transport = kind(ssl_context=certificate.client_context())

        async def stream() -> AsyncIterator[int]:
            try:
                yield 1
            finally:
                try:
                    await transport.aclose()
                except Exception as exc:  # the test looks at what it was
                    errors.append(exc)

        async def main() -> None:
            asyncio.get_running_loop().set_exception_handler(lambda _, c: errors.append(c))
            generator = stream()
            if generator_first:
                await generator.__anext__()
            await transport.handle(HttpRequest("GET", url + "/"))
            if not generator_first:
                await generator.__anext__()
            held.append(generator)

        asyncio.run(main())
        _wait_until(lambda: behaviour.closed == behaviour.connections == 1)
        assert errors == []
        assert behaviour.closed == behaviour.connections == 1


def test_one_transport_serves_one_running_loop_at_a_time() -> None:
    with tls_server() as (url, certificate, _behaviour):
        transport = AiohttpTransport(ssl_context=certificate.client_context())
        with (
            another_loop_holds(
                lambda: transport.handle(HttpRequest("GET", url + "/")), last=transport.aclose
            ),
            pytest.raises(ConfigurationError, match="make one per event loop"),
        ):
            asyncio.run(transport.handle(HttpRequest("GET", url + "/")))


def test_the_async_gateways_default_to_it_and_close_it() -> None:
    async def scenario() -> None:
        assert isinstance(default_async_transport(), AiohttpTransport)
        gateway = AsyncStripeGateway("sk_test_x")
        assert isinstance(gateway._transport, AiohttpTransport)  # type: ignore[attr-defined]
        await gateway.aclose()

    asyncio.run(scenario())
