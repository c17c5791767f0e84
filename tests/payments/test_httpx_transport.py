"""The pooled httpx transports, sync and async, over a real loopback TLS server."""

from __future__ import annotations

import asyncio
import gc
import socket
import ssl
import time
import warnings
from collections.abc import Callable

import pytest

from commercekit.errors import ConfigurationError, OutcomeUnknownError, UnavailableError
from commercekit.payments import (
    AdyenGateway,
    AsyncHttpxTransport,
    HttpRequest,
    HttpxTransport,
    StripeGateway,
)
from commercekit.payments._transports._httpx import default_transport

from .tls_server import tls_server


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_calls_reuse_one_connection_and_read_whole_answers() -> None:
    with tls_server() as (url, certificate, behaviour):
        with HttpxTransport(ssl_context=certificate.client_context()) as transport:
            for i in range(5):
                response = transport.handle(
                    HttpRequest("POST", f"{url}/v1/charges", {"X-Try": str(i)}, b"a" * i)
                )
                assert response.status == 200
                assert response.body == b'{"ok": true, "read": %d}' % i
                assert response.header("content-type") == "application/json"
            client = transport._client
            assert not client.is_closed
        assert client.is_closed  # the with block closed it
        _wait_until(lambda: behaviour.closed == 1)
        assert behaviour.requests == 5
        assert behaviour.connections == behaviour.closed == 1


def test_a_refused_connection_is_unavailable_nothing_sent() -> None:
    with HttpxTransport() as transport, pytest.raises(UnavailableError, match="nothing was sent"):
        transport.handle(HttpRequest("GET", f"https://127.0.0.1:{_closed_port()}/", timeout_s=2))


def test_a_certificate_that_does_not_verify_is_unavailable_nothing_sent() -> None:
    with tls_server() as (url, _certificate, behaviour):
        with HttpxTransport() as transport, pytest.raises(UnavailableError):
            transport.handle(HttpRequest("GET", url + "/", timeout_s=2))
        assert behaviour.requests == 0


def test_a_connection_closed_after_sending_is_an_unknown_outcome() -> None:
    with tls_server() as (url, certificate, behaviour):
        behaviour.drop = True
        with (
            HttpxTransport(ssl_context=certificate.client_context()) as transport,
            pytest.raises(OutcomeUnknownError, match="look it up"),
        ):
            transport.handle(HttpRequest("POST", url + "/v1/refunds", body=b"x", timeout_s=2))
        assert behaviour.requests == 1


def test_an_answer_too_late_is_an_unknown_outcome() -> None:
    with tls_server() as (url, certificate, behaviour):
        behaviour.delay_s = 0.5
        with (
            HttpxTransport(ssl_context=certificate.client_context()) as transport,
            pytest.raises(OutcomeUnknownError),
        ):
            transport.handle(HttpRequest("POST", url + "/v1/charges", timeout_s=0.1))


def test_a_url_that_is_not_http_is_a_configuration_error() -> None:
    with HttpxTransport() as transport, pytest.raises(ConfigurationError):
        transport.handle(HttpRequest("GET", "ftp://127.0.0.1/"))
    with pytest.raises(ConfigurationError):
        HttpxTransport(max_connections=0)


def test_the_async_transport_reuses_connections_and_sorts_failures_the_same_way() -> None:
    async def scenario(url: str, certificate_context: object) -> None:
        async with AsyncHttpxTransport(ssl_context=certificate_context) as transport:  # type: ignore[arg-type]
            answers = [await transport.handle(HttpRequest("GET", url + "/")) for _ in range(3)]
            assert [a.status for a in answers] == [200, 200, 200]
            with pytest.raises(UnavailableError):
                await transport.handle(
                    HttpRequest("GET", f"https://127.0.0.1:{_closed_port()}/", timeout_s=2)
                )
            client = transport._pool.pool
            assert client is not None
            assert not client.is_closed
        assert client.is_closed  # the block's end closed it, not the loop's shutdown later
        assert transport._pool.pool is None

    with tls_server() as (url, certificate, behaviour):
        asyncio.run(scenario(url, certificate.client_context()))
        _wait_until(lambda: behaviour.closed == 1)
        assert behaviour.connections == behaviour.closed == 1
        assert behaviour.requests == 3

    async def dropped(url: str, certificate_context: object) -> None:
        async with AsyncHttpxTransport(ssl_context=certificate_context) as transport:  # type: ignore[arg-type]
            with pytest.raises(OutcomeUnknownError):
                await transport.handle(HttpRequest("POST", url + "/", timeout_s=2))

    with tls_server() as (url, certificate, behaviour):
        behaviour.drop = True
        asyncio.run(dropped(url, certificate.client_context()))


def test_the_http_gateways_pool_connections_by_default() -> None:
    stripe = StripeGateway("sk_test_x")
    adyen = AdyenGateway(api_key="k", merchant_account="m", return_url="https://shop.test/r")
    assert isinstance(default_transport(), HttpxTransport)
    for gateway in (stripe, adyen):
        assert isinstance(gateway._client._transport, HttpxTransport)  # type: ignore[attr-defined]


def _wait_until(done: Callable[[], bool]) -> None:
    """Wait (up to 5 s) for the server thread to see what the client did."""
    deadline = time.monotonic() + 5
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_the_async_transport_outliving_its_event_loop_leaves_no_socket_open() -> None:
    async def call(transport: AsyncHttpxTransport, url: str) -> None:
        assert (await transport.handle(HttpRequest("GET", url + "/"))).status == 200

    with tls_server() as (url, certificate, behaviour):
        transport = AsyncHttpxTransport(ssl_context=certificate.client_context())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            asyncio.run(call(transport, url))
            _wait_until(lambda: behaviour.closed == 1)  # closed as asyncio.run() ended
            assert (behaviour.connections, behaviour.closed) == (1, 1)
            asyncio.run(call(transport, url))  # a new loop: a new pool
            _wait_until(lambda: behaviour.closed == 2)
            assert (behaviour.connections, behaviour.closed) == (2, 2)
            del transport
            gc.collect()
        assert [str(w.message) for w in caught] == []


def test_a_closed_transport_opens_a_new_pool_on_its_next_call() -> None:
    async def twice(url: str, context: ssl.SSLContext) -> None:
        transport = AsyncHttpxTransport(ssl_context=context)
        clients = []
        for _ in range(2):
            async with transport:
                await transport.handle(HttpRequest("GET", url + "/"))
                clients.append(transport._pool.pool)
            assert transport._pool.pool is None
        assert clients[0] is not clients[1]
        assert all(c is not None and c.is_closed for c in clients)

    with tls_server() as (url, certificate, behaviour):
        asyncio.run(twice(url, certificate.client_context()))
        with HttpxTransport(ssl_context=certificate.client_context()) as transport:
            transport.handle(HttpRequest("GET", url + "/"))
        transport.handle(HttpRequest("GET", url + "/"))  # closed: a new pool
        transport.close()
        assert behaviour.requests == 4
