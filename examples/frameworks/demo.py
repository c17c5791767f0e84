"""What every framework example does when run: serve the shop for real, then use each route.

:func:`exercise` is the client side (httpx over loopback): concurrent
checkouts, a retried one, bad input, a signed webhook delivered twice and a
forged one, a static file through the CDN twice, and ``/metrics``. It raises
``AssertionError`` on any wrong answer, so the examples double as tests.
:func:`serving` runs an ASGI app on uvicorn on a free loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from commercekit.payments import stripe_signature

from .provider import serve_provider
from .shop import WEBHOOK_SECRET

__all__ = ["checkout_body", "exercise", "main", "run", "serving"]


def checkout_body(order_id: str) -> dict[str, str]:
    """A checkout request as the shop's page would send it (a Stripe test payment method)."""
    return {
        "order_id": order_id,
        "amount": "19.99",
        "currency": "EUR",
        "payment_method": "pm_card_visa",
    }


def signed_event(intent_id: str, event_id: str) -> tuple[bytes, str]:
    """A ``payment_intent.succeeded`` event for *intent_id* and its Stripe-Signature header."""
    now = int(time.time())
    event = {
        "id": event_id,
        "type": "payment_intent.succeeded",
        "created": now,
        "data": {"object": {"id": intent_id, "object": "payment_intent"}},
    }
    payload = json.dumps(event).encode()
    return payload, stripe_signature(payload, WEBHOOK_SECRET, now)


@asynccontextmanager
async def serving(app: Callable[..., Any]) -> AsyncIterator[str]:
    """Serve ASGI *app* with uvicorn on a free loopback port; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", backlog=1024, timeout_keep_alive=60
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # raises why it did not start
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def exercise(base_url: str, *, checkouts: int = 20, run: str = "demo") -> None:
    """Use every route of the shop at *base_url*, print what happened, check the answers."""
    limits = httpx.Limits(max_connections=checkouts + 10)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(client.post("/checkout", json=checkout_body(f"{run}-{i}")) for i in range(checkouts))
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        assert [a.status_code for a in answers] == [201] * checkouts, answers[0].text
        print(f"{checkouts} concurrent checkouts: all 201 in {elapsed_ms:.0f} ms")
        first = answers[0].json()

        again = await client.post("/checkout", json=checkout_body(f"{run}-0"))
        assert again.status_code == 201
        assert again.json()["payment"] == first["payment"], again.text
        print("the same order again:", again.json()["status"], "with the same payment")

        bad = await client.post("/checkout", json={**checkout_body(f"{run}-x"), "amount": "1.999"})
        assert bad.status_code == 400, bad.text
        print("an amount with 3 decimals in EUR:", bad.status_code, bad.json()["error"][:60])

        payload, header = signed_event(first["payment"], f"evt_{run}")
        outcomes = []
        for _ in range(2):  # Stripe delivers at least once
            hook = await client.post(
                "/webhooks/stripe", content=payload, headers={"Stripe-Signature": header}
            )
            assert hook.status_code == 200, hook.text
            outcomes.append(hook.json()["outcome"])
        assert outcomes == ["accepted", "duplicate"], outcomes
        forged = await client.post(
            "/webhooks/stripe", content=payload, headers={"Stripe-Signature": "t=1,v1=00"}
        )
        assert forged.status_code == 400, forged.text
        order = (await client.get(f"/orders/{first['order_id']}")).json()
        assert order["status"] == "captured", order
        print("webhook delivered twice:", outcomes, "; forged:", forged.status_code)
        print("order after the webhook:", order["status"])

        statuses = []
        for _ in range(2):
            asset = await client.get("/static/logo.svg")
            assert asset.status_code == 200, asset.status_code
            assert asset.text == "<svg/>"
            statuses.append(asset.headers.get("cache-status", ""))
        assert "hit" in statuses[1], statuses
        print("/static/logo.svg through the CDN:", " then ".join(statuses))

        page = await client.get("/metrics")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/plain")
        wanted = "commercekit_payments_attempts_total"
        lines = [line for line in page.text.splitlines() if line.startswith(wanted)]
        assert lines, page.text[:500]
        print("/metrics:", lines[0])


Serve = Callable[[str, Path], AbstractAsyncContextManager[str]]


async def run(serve: Serve, *, argv: list[str] | None = None) -> None:
    """Start a provider that takes 200 ms a call, serve the shop, use every route, stop.

    *serve(provider_url, folder)* builds the example's shop and app and serves
    it, yielding its base URL. With ``--serve`` on *argv*, print the URL and keep
    serving until interrupted instead (try ``curl -X POST $URL/checkout -H
    'content-type: application/json' -d '{"order_id": "o-1", "amount": "19.99",
    "currency": "EUR", "payment_method": "pm_card_visa"}'``).
    """
    with tempfile.TemporaryDirectory() as folder, serve_provider(delay_s=0.2) as provider:
        static = Path(folder, "static")
        static.mkdir()
        (static / "logo.svg").write_text("<svg/>")
        async with serve(provider.url, Path(folder)) as base_url:
            if argv and "--serve" in argv:
                print("serving on", base_url, "(Ctrl-C stops)", flush=True)
                await asyncio.Event().wait()
            await exercise(base_url)
        print("provider calls:", provider.calls)


def main(serve: Serve) -> None:
    """``python examples/frameworks_*.py [--serve]``: :func:`run`; Ctrl-C stops it quietly."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(serve, argv=sys.argv[1:]))
