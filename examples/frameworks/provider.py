"""A Stripe-shaped payment provider on loopback that takes a fixed time per call.

It is a small asyncio HTTP/1.1 server (keep-alive, Content-Length bodies) so
that hundreds of calls can wait on it at once at no cost; it answers the calls
an authorization needs, in Stripe's wire format:
``POST /v1/payment_intents`` (form-encoded, ``Idempotency-Key`` honoured: the
same key gets the same answer), ``POST /v1/payment_intents/{id}/capture`` and
``GET /v1/payment_intents`` (the list a lookup reads). Every call sleeps
*delay_s* first, the way a real provider keeps a checkout waiting, so a web
app that blocks on it shows at once.

Run it alone (the benchmark does, so it does not share a core's time slices
with the app measured)::

    python -m frameworks.provider --port 8765 --delay-ms 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http
import itertools
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["SlowStripe", "serve_provider"]


class SlowStripe:
    """The provider's state and answers: PaymentIntents by id and by idempotency key."""

    def __init__(self, *, delay_s: float = 0.2) -> None:
        self.delay_s = delay_s
        self.intents: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        """The most calls it held at once: how many checkouts waited on it together."""
        self.url = ""  # set once it listens
        self._gate: tuple[int, float, asyncio.Event] | None = None
        self._ids = itertools.count(1)
        self._connections: set[asyncio.Task[None]] = set()

    async def answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """Take *delay_s*, then answer one API call as Stripe would (status, JSON)."""
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self._wait()
        finally:
            self.in_flight -= 1
        if not headers.get("authorization", "").startswith("Bearer sk_"):
            return 401, {"error": {"type": "invalid_request_error", "message": "bad API key"}}
        path = urllib.parse.urlsplit(target).path
        if method == "POST" and path == "/v1/payment_intents":
            form = dict(urllib.parse.parse_qsl(body.decode()))
            return 200, self._create(form, headers.get("idempotency-key", ""))
        if (
            method == "POST"
            and path.startswith("/v1/payment_intents/")
            and path.endswith("/capture")
        ):
            intent = self.intents.get(path.split("/")[3])
            if intent is None:
                return _missing()
            if intent["status"] == "requires_capture":
                intent["status"] = "succeeded"
                intent["amount_received"] = intent["amount"]
            return 200, intent
        if method == "GET" and path == "/v1/payment_intents":
            recent = list(self.intents.values())[-100:][::-1]
            return 200, {"object": "list", "data": recent, "has_more": False}
        return _missing()

    def hold(self, calls: int, *, timeout_s: float) -> None:
        """From now on, hold every call until *calls* are in flight (or *timeout_s* passed).

        A test sees, without timing anything, whether a web app lets that many
        requests wait on the provider at once: if it does not, the calls are
        released by the timeout and :attr:`max_in_flight` says how many it let through.
        """
        self._gate = (calls, timeout_s, asyncio.Event())

    async def _wait(self) -> None:
        if self._gate is None:
            await asyncio.sleep(self.delay_s)
            return
        calls, timeout_s, opened = self._gate
        if self.in_flight >= calls:
            opened.set()
        try:
            await asyncio.wait_for(opened.wait(), timeout_s)
        except TimeoutError:
            opened.set()  # they are not coming: release every held call, hold no more

    def _create(self, form: dict[str, str], key: str) -> dict[str, Any]:
        if key in self.by_key:  # the same key: the same answer, as Stripe keeps them
            return self.by_key[key]
        manual = form.get("capture_method") == "manual"
        intent: dict[str, Any] = {
            "id": f"pi_{next(self._ids):012d}",
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "currency": form["currency"],
            "capture_method": "manual" if manual else "automatic",
            "status": "requires_capture" if manual else "succeeded",
            "metadata": {
                k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")
            },
        }
        self.intents[intent["id"]] = self.by_key[key] = intent
        return intent

    async def serve(self, port: int = 0, *, started: asyncio.Event | None = None) -> None:
        """Listen on 127.0.0.1:*port* (0: a free one) until cancelled."""
        server = await asyncio.start_server(self._connection, "127.0.0.1", port, backlog=2048)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        if started is not None:
            started.set()
        try:
            async with server:
                await server.serve_forever()
        finally:  # cancelled: end the open connections too
            for connection in self._connections:
                connection.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """HTTP/1.1 with keep-alive: one request after another until the client closes."""
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                line, *fields = head.decode("latin-1").split("\r\n")
                method, target, _ = line.split(" ", 2)
                headers = {}
                for field in fields:
                    name, sep, value = field.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                status, payload = await self.answer(method, target, headers, body)
                data = json.dumps(payload).encode()
                answer_head = (
                    f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                )
                writer.write(answer_head.encode() + data)
                await writer.drain()
        finally:
            self._connections.discard(task)
            writer.close()


def _missing() -> tuple[int, dict[str, Any]]:
    return 404, {"error": {"type": "invalid_request_error", "message": "No such object"}}


@contextmanager
def serve_provider(*, delay_s: float = 0.2) -> Iterator[SlowStripe]:
    """Run a :class:`SlowStripe` on a free loopback port, on an event loop in a thread."""
    provider = SlowStripe(delay_s=delay_s)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="slow-stripe", daemon=True)
    thread.start()
    started = asyncio.Event()

    async def start() -> asyncio.Task[None]:
        task = asyncio.create_task(provider.serve(started=started))
        await started.wait()
        return task

    task = asyncio.run_coroutine_threadsafe(start(), loop).result(10)

    async def stop() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    try:
        yield provider
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def main() -> None:
    """Serve until interrupted (``--port 0`` picks a free port); print the base URL first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=200.0)
    args = parser.parse_args()
    provider = SlowStripe(delay_s=args.delay_ms / 1000)

    async def run() -> None:
        started = asyncio.Event()
        task = asyncio.create_task(provider.serve(args.port, started=started))
        await started.wait()
        print(provider.url, flush=True)
        await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
