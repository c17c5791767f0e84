"""The pooled aiohttp transport (the async gateways' default) over a real loopback TLS server."""

from __future__ import annotations

import asyncio
import gc
import socket

import pytest

from commercekit.errors import ConfigurationError, OutcomeUnknownError, UnavailableError
from commercekit.payments import (
    AiohttpTransport,
    AsyncStripeGateway,
    HttpRequest,
    HttpResponse,
)
from commercekit.payments._transports._aiohttp import default_async_transport

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


def test_a_dropped_transport_closes_its_pool_when_collected() -> None:
    async def scenario(url: str, context: object) -> None:
        transport = AiohttpTransport(ssl_context=context)  # type: ignore[arg-type]
        await transport.handle(HttpRequest("GET", url + "/"))
        connector = transport._session.connector  # type: ignore[union-attr]
        assert connector is not None
        assert not connector.closed
        del transport
        gc.collect()
        assert connector.closed

    with tls_server() as (url, certificate, _behaviour):
        asyncio.run(scenario(url, certificate.client_context()))


def test_the_async_gateways_default_to_it_and_close_it() -> None:
    async def scenario() -> None:
        assert isinstance(default_async_transport(), AiohttpTransport)
        gateway = AsyncStripeGateway("sk_test_x")
        assert isinstance(gateway._transport, AiohttpTransport)  # type: ignore[attr-defined]
        await gateway.aclose()

    asyncio.run(scenario())
