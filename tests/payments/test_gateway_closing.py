"""Every shipped gateway closes the transport it made itself, with ``with`` / ``async with``.

A transport the caller passed in stays open: it is the caller's to close.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from commercekit.payments import (
    AdyenGateway,
    AmazonPayGateway,
    AsyncAdyenGateway,
    AsyncAmazonPayGateway,
    AsyncSandboxGateway,
    AsyncStripeGateway,
    HttpRequest,
    HttpResponse,
    SandboxGateway,
    StripeGateway,
)
from commercekit.payments._transports import _owned

from .test_amazonpay import config_for


class Recording:
    """A transport, sync and async, that counts how often it was closed."""

    def __init__(self) -> None:
        self.closed = 0

    def handle(self, request: HttpRequest) -> HttpResponse:
        raise AssertionError("no call is made")

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.closed += 1


SYNC: dict[str, Callable[..., Any]] = {
    "stripe": lambda **kw: StripeGateway("sk_test_x", **kw),
    "adyen": lambda **kw: AdyenGateway("key", "Merchant", return_url="https://shop/r", **kw),
    "amazonpay": lambda **kw: AmazonPayGateway(config_for("https://pay-api.amazon.com"), **kw),
}
ASYNC: dict[str, Callable[..., Any]] = {
    "stripe": lambda **kw: AsyncStripeGateway("sk_test_x", **kw),
    "adyen": lambda **kw: AsyncAdyenGateway("key", "Merchant", return_url="https://shop/r", **kw),
    "amazonpay": lambda **kw: AsyncAmazonPayGateway(config_for("https://pay-api.amazon.com"), **kw),
}


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[Recording]:
    """The transports the gateways make for themselves from here on."""
    made: list[Recording] = []

    def default() -> Recording:
        made.append(Recording())
        return made[-1]

    monkeypatch.setattr(_owned, "default_transport", default)
    monkeypatch.setattr(_owned, "default_async_transport", default)
    return made


@pytest.mark.parametrize("provider", sorted(SYNC))
def test_a_sync_gateway_closes_the_transport_it_made(provider: str, made: list[Recording]) -> None:
    with SYNC[provider]() as gateway:
        assert gateway.name
    assert [t.closed for t in made] == [1]
    gateway.close()  # closing twice is harmless
    theirs = Recording()
    with SYNC[provider](transport=theirs):
        pass
    assert theirs.closed == 0


@pytest.mark.parametrize("provider", sorted(ASYNC))
def test_an_async_gateway_closes_the_transport_it_made(
    provider: str, made: list[Recording]
) -> None:
    async def scenario() -> None:
        async with ASYNC[provider]() as gateway:
            assert gateway.name
        assert [t.closed for t in made] == [1]
        await gateway.aclose()
        theirs = Recording()
        async with ASYNC[provider](transport=theirs):
            pass
        assert theirs.closed == 0

    asyncio.run(scenario())


def test_the_sandboxes_take_with_too() -> None:
    with SandboxGateway() as sandbox:
        assert sandbox.name == "sandbox"

    async def scenario() -> None:
        async with AsyncSandboxGateway(sandbox) as gateway:
            assert gateway.sandbox is sandbox

    asyncio.run(scenario())
