"""Benchmark of the FastAPI example: 200 concurrent checkouts, each waiting 200 ms on the provider.

The FastAPI app of ``examples/frameworks_fastapi.py`` runs on uvicorn (uvloop,
httptools) in a process of its own; the Stripe-shaped provider
(``examples/frameworks/provider.py``) runs in another and takes 200 ms per
call; this process sends 200 checkouts at once (one keep-alive connection
each) and times until the last answer. Each checkout authorizes a payment over
loopback HTTP and writes its order to SQLite (a file, WAL mode).

Two versions of the same app, in the same run:

- **async**: the handler awaits ``AsyncShop.checkout`` (the asyncio payment
  service and repository), so every checkout waits on the provider at once:
  about one call's latency plus overhead;
- **thread pool** (the sync version): the same handler awaits
  ``ThreadPoolShop.checkout``, which runs the blocking ``Shop.checkout`` in the
  framework's thread pool (anyio's, 40 threads by default), so checkouts wait
  in batches of 40: about 200 x 200 ms / 40 = 1 s.

Beside them, one provider call's latency, measured in this run with the
same gateway (``StripeGateway`` over a pooled ``HttpxTransport``). Target
(``meets_async_within_3x_call``): the async wall time is at most 3x one call's
latency. Each version runs a warm-up round (connections opened, code paths
hot) and then timed rounds; its figure is the fastest round, the median beside
it. The script reports; it does not fail on a miss::

    .venv/bin/python benchmarks/frameworks.py            # the table
    .venv/bin/python benchmarks/frameworks.py --json     # the same figures as one JSON object
    .venv/bin/python benchmarks/frameworks.py --quick    # one timed round
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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
DELAY_MS = 200.0
TARGET_CALLS = 3.0  # async wall time <= this many times one call's latency


# -- the app process ---------------------------------------------------------------------


def serve_apps(provider_url: str, folder: str) -> None:
    """Serve both versions of the FastAPI example until stdin closes; print their URLs first.

    One process, one event loop, two uvicorn servers: the versions are measured
    one after the other, so they never compete, and the process starts once.
    """
    import uvicorn
    from frameworks.shop import AsyncShop, ThreadPoolShop
    from frameworks_fastapi import create_app

    servers = [
        uvicorn.Server(
            uvicorn.Config(
                create_app(make(provider_url=provider_url, folder=Path(folder, make.__name__))),
                host="127.0.0.1",
                port=0,
                log_level="warning",
                backlog=2048,
                timeout_keep_alive=120,  # the load generator keeps its connections between rounds
            )
        )
        for make in (AsyncShop, ThreadPoolShop)
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
def process(*args: str) -> Iterator[str]:
    """Run a Python process that prints its URL first; yield that line; stop it after.

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
        yield line
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(0.5 if "frameworks.provider" in args else 10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(5)


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


async def measure_app(url: str, version: str, n: int, rounds: int) -> dict[str, Any]:
    clients = [await Client.connect(url) for _ in range(n)]
    try:
        await burst_ms(clients, f"{version}-warm-{time.time_ns()}")
        times = [await burst_ms(clients, f"{version}-{r}-{time.time_ns()}") for r in range(rounds)]
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    return {"wall_best_ms": min(times), "wall_median_ms": statistics.median(times), "rounds": times}


def measure(n: int, rounds: int, latency_calls: int) -> dict[str, Any]:
    report: dict[str, Any] = {
        "concurrent_checkouts": n,
        "provider_delay_ms": DELAY_MS,
    }
    provider = ("-m", "frameworks.provider", "--delay-ms", str(DELAY_MS))
    with process(*provider) as provider_url:
        latency = call_latency_ms(provider_url, latency_calls)
        report["call_best_ms"] = min(latency)
        report["call_median_ms"] = statistics.median(latency)
        with tempfile.TemporaryDirectory(prefix="ck-fw-bench-") as folder:
            app = (str(Path(__file__)), "--serve-apps", provider_url, folder)
            with process(*app) as line:
                async_url, threadpool_url, threads = line.split()
                report["thread_pool_size"] = int(threads)
                for version, url in (("async", async_url), ("threadpool", threadpool_url)):
                    report[version] = asyncio.run(measure_app(url, version, n, rounds))
    call = report["call_median_ms"]
    report["async_calls"] = report["async"]["wall_best_ms"] / call
    report["threadpool_calls"] = report["threadpool"]["wall_best_ms"] / call
    report["threadpool_ideal_ms"] = n / report["thread_pool_size"] * call
    report["meets_async_within_3x_call"] = report["async_calls"] <= TARGET_CALLS
    report["meets_async_beats_threadpool"] = (
        report["async"]["wall_best_ms"] < report["threadpool"]["wall_best_ms"]
    )
    return report


def table(r: dict[str, Any]) -> str:
    ok = "met" if r["meets_async_within_3x_call"] else "NOT met"
    a, t = r["async"], r["threadpool"]
    return "\n".join(
        [
            f"{r['concurrent_checkouts']} concurrent checkouts through the FastAPI example, "
            f"provider {r['provider_delay_ms']:.0f} ms a call",
            f"  one provider call:        best {r['call_best_ms']:7.1f} ms   "
            f"median {r['call_median_ms']:7.1f} ms",
            f"  async handler:            best {a['wall_best_ms']:7.1f} ms   "
            f"median {a['wall_median_ms']:7.1f} ms   = {r['async_calls']:.2f} calls "
            f"(target <= {TARGET_CALLS:.0f}: {ok})",
            f"  thread pool ({r['thread_pool_size']} threads): best {t['wall_best_ms']:7.1f} ms   "
            f"median {t['wall_median_ms']:7.1f} ms   = {r['threadpool_calls']:.2f} calls "
            f"(n / threads x call = {r['threadpool_ideal_ms']:.0f} ms)",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table, or its JSON with ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--serve-apps", nargs=2, metavar=("PROVIDER", "FOLDER"))
    args = parser.parse_args(argv)
    if args.serve_apps:
        serve_apps(*args.serve_apps)
        return 0
    rounds, latency_calls = (1, 3) if args.quick else (5, 10)
    report = measure(CONCURRENT, rounds, latency_calls)
    report["machine"] = machine("fastapi", "starlette", "uvicorn", "httpx")
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print(table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
