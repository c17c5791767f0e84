"""Benchmark of the FastAPI example: 200 concurrent checkouts, each waiting 200 ms on the provider.

The FastAPI app of ``examples/frameworks_fastapi.py`` runs on uvicorn (uvloop,
httptools) in a process of its own; the Stripe-shaped provider
(``examples/frameworks/provider.py``, asyncio) runs in another and takes 200 ms
per call; this process opens 200 keep-alive connections, sends one checkout on
each at once, and times until the last answer. A checkout authorizes a
payment over loopback HTTP and writes its order to SQLite (a file, WAL mode).

Versions of the same app, in the same run, one after the other:

- **async**: the handler awaits ``AsyncShop.checkout``: ``AsyncPaymentService``
  over ``AsyncStripeGateway`` and ``AiohttpTransport`` (the async default, 200
  pooled connections), and ``AsyncDatabase`` on aiosqlite (one connection). Every checkout can
  wait on the provider at once: about one call's latency plus overhead;
- **thread pool** (the sync version): the handler awaits
  ``ThreadPoolShop.checkout``, the blocking ``Shop.checkout`` (``PaymentService``,
  ``HttpxTransport``, ``Database``) in the framework's thread pool (anyio's, 40
  threads by default): checkouts wait in batches of 40, about
  200 x 200 ms / 40 = 1 s.

Without ``--quick``, three more rows say what the async figure is made of:

- **floor**: the same app whose checkout only sleeps 200 ms (no payment, no
  order): uvicorn, FastAPI and the load generator;
- **async, orders only**: the async version with the provider call replaced by
  a 200 ms sleep: what ``AsyncDatabase`` adds;
- **async, httpx transport**: the async version with the payment calls sent
  through ``AsyncHttpxTransport`` (200 pooled connections): what httpcore's
  pool costs beside aiohttp's (encode/httpcore#1035).

Beside each wall time, the CPU seconds the app process spent on the round
(from ``/proc``): on a loaded machine the wall time stretches with the load,
the CPU time much less. One provider call's latency is measured in the same
run with the same gateway (``StripeGateway`` over ``HttpxTransport``). Target
(``meets_async_within_3x_call``): the async wall time at most 3x one call's
latency. Each version runs a warm-up round (connections opened, code paths
hot) and then timed rounds; its figure is the fastest round, the median
beside it. The script reports; it does not fail on a miss::

    .venv/bin/python benchmarks/frameworks.py            # the table
    .venv/bin/python benchmarks/frameworks.py --json     # the same figures as one JSON object
    .venv/bin/python benchmarks/frameworks.py --quick    # 60 checkouts, async and thread pool
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread

ROOT = Path(__file__).resolve().parent.parent
# examples/ first: its frameworks package, not this script, is ``frameworks``.
sys.path.insert(0, str(ROOT / "examples"))
from _harness import machine  # noqa: E402
from frameworks.demo import checkout_body  # noqa: E402

from commercekit.money import Money  # noqa: E402
from commercekit.payments import HttpxTransport, ProviderToken, StripeGateway  # noqa: E402

CONCURRENT = 200
QUICK_CONCURRENT = 60
DELAY_MS = 200.0
TARGET_CALLS = 3.0  # async wall time <= this many times one call's latency
QUICK_VERSIONS = ("async", "threadpool")
VERSIONS = (*QUICK_VERSIONS, "floor", "async_orders_only", "async_httpx")
LABELS = {
    "async": "async handler",
    "threadpool": "thread pool ({threads} threads)",
    "floor": "floor: handler sleeps 200 ms",
    "async_orders_only": "async, orders only",
    "async_httpx": "async, httpx transport",
}


# -- the app process ---------------------------------------------------------------------


def shop_classes() -> dict[str, Any]:
    """The shop behind each version (imported in the app process only)."""
    from frameworks.shop import AsyncShop, CheckoutForm, ThreadPoolShop, answer

    from commercekit.payments import (
        AsyncHttpxTransport,
        AsyncPaymentService,
        AsyncStripeGateway,
        InMemoryIdempotencyStore,
        Operation,
        PaymentResult,
        PaymentState,
    )
    from commercekit.payments._core._results import approved_result

    def fake_authorization(form: CheckoutForm) -> PaymentResult:
        return approved_result(
            "stripe", Operation.AUTHORIZE, f"pi_{form.order_id}", form.amount,
            PaymentState.AUTHORIZED,
        )  # fmt: skip

    class FloorShop(AsyncShop):
        async def checkout(self, form: CheckoutForm) -> tuple[int, dict[str, Any]]:
            await asyncio.sleep(DELAY_MS / 1000)
            return answer(form, fake_authorization(form))

    class OrdersOnlyShop(AsyncShop):
        async def checkout(self, form: CheckoutForm) -> tuple[int, dict[str, Any]]:
            await asyncio.sleep(DELAY_MS / 1000)
            result = fake_authorization(form)
            await self.database.run(lambda uow: self._write(uow, form, result), retry=True)
            return answer(form, result)

        async def _write(self, uow: Any, form: CheckoutForm, result: PaymentResult) -> None:
            from frameworks.shop import Order, new_order

            await uow.repository(Order).add(new_order(form, result.reference))  # as AsyncShop

    class HttpxShop(AsyncShop):
        def __init__(self, *, provider_url: str, folder: Path) -> None:
            super().__init__(provider_url=provider_url, folder=folder)
            self._httpx = AsyncHttpxTransport(max_connections=CONCURRENT)
            gateway = AsyncStripeGateway(
                "sk_test_bench", transport=self._httpx, base_url=provider_url
            )
            self.payments = AsyncPaymentService(
                gateway, InMemoryIdempotencyStore(), metrics=self.metrics
            )

        async def aclose(self) -> None:
            await self._httpx.aclose()
            await super().aclose()

    return {
        "async": AsyncShop,
        "threadpool": ThreadPoolShop,
        "floor": FloorShop,
        "async_orders_only": OrdersOnlyShop,
        "async_httpx": HttpxShop,
    }


def serve_apps(provider_url: str, folder: str, versions: Sequence[str]) -> None:
    """Serve one FastAPI app per version until stdin closes; print their URLs first.

    One process, one event loop, one uvicorn server per version: the versions
    are measured one after the other, so they never compete, and the process
    starts once.
    """
    import uvicorn
    from frameworks_fastapi import create_app

    classes = shop_classes()
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                create_app(classes[v](provider_url=provider_url, folder=Path(folder, v))),
                host="127.0.0.1",
                port=0,
                log_level="warning",
                backlog=2048,
                timeout_keep_alive=120,  # the load generator keeps its connections between rounds
            )
        )
        for v in versions
    ]

    async def main() -> None:
        tasks = [asyncio.create_task(server.serve()) for server in servers]
        while not all(server.started for server in servers):
            await asyncio.sleep(0.01)
        ports = [server.servers[0].sockets[0].getsockname()[1] for server in servers]
        threads = int(anyio.to_thread.current_default_thread_limiter().total_tokens)
        print(*(f"http://127.0.0.1:{port}" for port in ports), threads, flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the benchmark closes our stdin
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)

    asyncio.run(main())  # each app's lifespan closes its shop


@contextlib.contextmanager
def process(*args: str) -> Iterator[tuple[str, int]]:
    """Run a Python process that prints its URL first; yield that line and its pid; stop it.

    It is asked to stop by closing its stdin (the app servers finish their
    shutdown), and terminated when it does not (the provider serves until killed).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "examples")])}
    proc = subprocess.Popen(
        [sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("http://"):
            raise RuntimeError(f"{args[:2]} did not start (exit {proc.wait(10)})")
        yield line, proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(0.5 if "frameworks.provider" in args else 10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(5)


def cpu_s(pid: int) -> float | None:
    """The CPU seconds (user + system) process *pid* has used, from /proc; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the measurements --------------------------------------------------------------------


def call_latency_ms(provider_url: str, calls: int) -> list[float]:
    """One authorization at a time through StripeGateway over a pooled HttpxTransport."""
    with HttpxTransport() as transport:
        gateway = StripeGateway("sk_test_bench", transport=transport, base_url=provider_url)
        times = []
        for i in range(calls + 1):
            started = time.perf_counter()
            gateway.authorize(
                Money.of("19.99", "EUR"),
                ProviderToken("pm_card_visa"),
                idempotency_key=f"latency-{time.time_ns()}-{i}",
            )
            times.append((time.perf_counter() - started) * 1000)
    return times[1:]  # the first opened the connection


class Client:
    """One keep-alive HTTP/1.1 connection that POSTs JSON: the load generator.

    Plain asyncio streams, not httpx: httpcore's pool spends milliseconds of CPU
    per request once it holds hundreds of connections (encode/httpcore#1035),
    and the load generator must not be what is measured.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, url: str) -> Client:
        parts = urllib.parse.urlsplit(url)
        return cls(*await asyncio.open_connection(parts.hostname, parts.port))

    async def post(self, path: str, payload: dict[str, str]) -> tuple[int, bytes]:
        body = json.dumps(payload).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        answer = await self.reader.readuntil(b"\r\n\r\n")
        status = int(answer.split(b" ", 2)[1])
        length = 0
        for line in answer.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def aclose(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def burst_ms(clients: list[Client], run: str) -> float:
    """Send one checkout on each client at once; the wall time until every one answered 201."""
    bodies = [checkout_body(f"{run}-{i}") for i in range(len(clients))]
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(c.post("/checkout", b) for c, b in zip(clients, bodies, strict=True))
    )
    elapsed = (time.perf_counter() - started) * 1000
    bad = [a for a in answers if a[0] != 201]
    if bad:
        raise RuntimeError(f"{len(bad)} checkouts failed: {bad[0][0]} {bad[0][1][:200]!r}")
    return elapsed


async def measure_app(url: str, pid: int, version: str, n: int, rounds: int) -> dict[str, Any]:
    clients = [await Client.connect(url) for _ in range(n)]
    times, cpus = [], []
    try:
        await burst_ms(clients, f"{version}-warm-{time.time_ns()}")
        for r in range(rounds):
            before = cpu_s(pid)
            times.append(await burst_ms(clients, f"{version}-{r}-{time.time_ns()}"))
            after = cpu_s(pid)
            if before is not None and after is not None:
                cpus.append(after - before)
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    return {
        "wall_best_ms": min(times),
        "wall_median_ms": statistics.median(times),
        "app_cpu_median_s": statistics.median(cpus) if cpus else None,
        "rounds_ms": times,
    }


def measure(n: int, rounds: int, latency_calls: int, versions: Sequence[str]) -> dict[str, Any]:
    report: dict[str, Any] = {"concurrent_checkouts": n, "provider_delay_ms": DELAY_MS}
    provider = ("-m", "frameworks.provider", "--delay-ms", str(DELAY_MS))
    with process(*provider) as (provider_url, _):
        latency = call_latency_ms(provider_url, latency_calls)
        report["call_best_ms"] = min(latency)
        report["call_median_ms"] = statistics.median(latency)
        with tempfile.TemporaryDirectory(prefix="ck-fw-bench-") as folder:
            app = (str(Path(__file__)), "--serve-apps", provider_url, folder, ",".join(versions))
            with process(*app) as (line, pid):
                *urls, threads = line.split()
                report["thread_pool_size"] = int(threads)
                for version, url in zip(versions, urls, strict=True):
                    report[version] = asyncio.run(measure_app(url, pid, version, n, rounds))
    call = report["call_best_ms"]  # best against best: the wall figures are best rounds too
    for version in versions:
        v = report[version]
        v["calls"] = v["wall_best_ms"] / call
        cpu = v["app_cpu_median_s"]
        v["app_cpu_per_checkout_ms"] = None if cpu is None else cpu * 1000 / n
    report["threadpool_ideal_ms"] = math.ceil(n / report["thread_pool_size"]) * call
    report["target_calls"] = TARGET_CALLS
    report["meets_async_within_3x_call"] = report["async"]["calls"] <= TARGET_CALLS
    report["meets_async_beats_threadpool"] = (
        report["async"]["wall_best_ms"] < report["threadpool"]["wall_best_ms"]
    )
    return report


def table(r: dict[str, Any]) -> str:
    lines = [
        f"{r['concurrent_checkouts']} concurrent checkouts through the FastAPI example, "
        f"provider {r['provider_delay_ms']:.0f} ms a call",
        f"  {'one provider call':32} best {r['call_best_ms']:8.1f} ms  "
        f"median {r['call_median_ms']:8.1f} ms",
        f"  {'':32} {'best wall':>12}  {'median':>10}  {'app CPU':>9}  {'/checkout':>9}  "
        f"{'calls':>6}",
    ]
    for version, label in LABELS.items():
        if version not in r:
            continue
        v = r[version]
        cpu = "" if v["app_cpu_median_s"] is None else f"{v['app_cpu_median_s']:.2f} s"
        each = (
            "" if v["app_cpu_per_checkout_ms"] is None else f"{v['app_cpu_per_checkout_ms']:.2f} ms"
        )
        lines.append(
            f"  {label.format(threads=r['thread_pool_size']):32} {v['wall_best_ms']:9.1f} ms  "
            f"{v['wall_median_ms']:7.1f} ms  {cpu:>9}  {each:>9}  {v['calls']:6.2f}"
        )
    ok = "met" if r["meets_async_within_3x_call"] else "NOT met"
    lines.append(
        f"  async <= {r['target_calls']:.0f} calls: {ok}; thread pool ideal "
        f"(batches of {r['thread_pool_size']} x call): {r['threadpool_ideal_ms']:.0f} ms"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table, or its JSON with ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--serve-apps", nargs=3, metavar=("PROVIDER", "FOLDER", "VERSIONS"))
    args = parser.parse_args(argv)
    if args.serve_apps:
        provider_url, folder, versions = args.serve_apps
        serve_apps(provider_url, folder, versions.split(","))
        return 0
    if args.quick:  # 60 checkouts: still more than the thread pool takes at once
        report = measure(QUICK_CONCURRENT, 1, 3, QUICK_VERSIONS)
    else:
        report = measure(CONCURRENT, 5, 10, VERSIONS)
    report["machine"] = machine("fastapi", "starlette", "uvicorn", "httpx", "aiohttp")
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print(table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
