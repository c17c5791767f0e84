"""Running ``serve``: one process, or a parent and worker processes sharing the port.

With ``--workers 1`` the process serves the proxy and, with ``--admin-port``,
the admin endpoints. With more, the parent binds the port with
``SO_REUSEPORT`` (so ``--port 0`` is resolved once), starts the workers (each
its own listening socket on that port, the kernel spreading connections
between them, each with its own in-process cache), serves the admin port
itself and forwards each admin request to every worker over a Unix socket,
and restarts a worker that dies. SIGTERM (or SIGINT) drains: stop accepting,
finish responses in progress, close; the parent forwards it to the workers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from ._admin import AdminHandler, FanOutAdmin
from ._http1 import AccessWriter, Connection, ConnectionOptions, ServerState
from ._serve import AccessLog, ProxyServer, bind, serve

__all__ = ["run_parent", "run_worker"]

log = logging.getLogger("commercekit.cdn")


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _metrics() -> tuple[Any, Any]:
    try:
        from commercekit.metrics import PrometheusMetrics

        backend = PrometheusMetrics()
    except ImportError:
        return None, None
    return backend, backend.exposition


def _access_log(args: argparse.Namespace) -> tuple[AccessWriter | None, IO[str] | None]:
    if args.access_log == "off":
        return None, None
    combined = args.access_log_format == "combined"
    if args.access_log == "-":
        return AccessLog(sys.stdout, combined=combined), None
    stream = open(args.access_log, "a", encoding="utf-8")  # noqa: SIM115 - closed at exit
    return AccessLog(stream, combined=combined), stream


def _edge(args: argparse.Namespace, metrics: Any) -> Any:
    from commercekit.cdn import (
        CachePolicy,
        EdgeCache,
        HttpOrigin,
        MemoryStore,
        RedisStore,
        TieredStore,
    )

    store: Any = MemoryStore(args.max_bytes, metrics=metrics)
    if args.redis:
        redis = RedisStore.from_url(
            args.redis,
            timeout_s=args.redis_timeout if args.redis_timeout > 0 else None,
            breaker_failures=args.redis_breaker_failures,
            breaker_reset_s=args.redis_breaker_reset,
            max_entry_bytes=args.redis_max_entry_bytes,
            metrics=metrics,
        )
        store = redis
        if args.near_bytes > 0:
            near = MemoryStore(args.near_bytes, metrics=metrics, name="near")
            store = TieredStore(near, redis, metrics=metrics)
    policy = CachePolicy(
        default_stale_while_revalidate_s=args.grace, default_stale_if_error_s=args.stale_if_error
    )
    return EdgeCache(
        HttpOrigin(args.origin, timeout_s=args.origin_timeout),
        store,
        policy=policy,
        metrics=metrics,
        origin_timeout_s=args.origin_timeout,
    )


async def run_worker(args: argparse.Namespace, token: str) -> None:
    """Serve until SIGTERM/SIGINT, then drain (one process, or one worker of several)."""
    from ._proxy import ProxyHandler

    metrics, exposition = _metrics()
    edge = _edge(args, metrics)
    handler = ProxyHandler(edge, max_body_bytes=args.max_body_bytes)
    access, stream = _access_log(args)
    stop = _stop_event()
    server = await serve(
        handler,
        host=args.host,
        port=args.port,
        max_header_bytes=args.max_header_bytes,
        header_timeout_s=args.header_timeout,
        idle_timeout_s=args.idle_timeout,
        backlog=args.backlog,
        reuse_port=args.worker_control is not None,
        access_log=access,
    )
    admin = AdminHandler(edge, token=token, exposition=exposition)
    admin_server: ProxyServer | asyncio.Server | None = None
    if args.worker_control is not None:
        state = ServerState(admin, ConnectionOptions())
        admin_server = await asyncio.get_running_loop().create_unix_server(
            lambda: Connection(state), path=args.worker_control
        )
    elif args.admin_port is not None:
        admin_server = await serve(admin, host=args.admin_host, port=args.admin_port)
    bound = server.sockets[0].getsockname()
    print(f"commercekit.cdn serving http://{bound[0]}:{bound[1]} -> {args.origin}", flush=True)
    if isinstance(admin_server, ProxyServer):
        at = admin_server.sockets[0].getsockname()
        print(f"commercekit.cdn admin on http://{at[0]}:{at[1]}", flush=True)
    await stop.wait()
    await server.drain(args.drain_timeout)
    if admin_server is not None:
        admin_server.close()
    await edge.aclose()
    if stream is not None:
        stream.close()


async def run_parent(args: argparse.Namespace, argv: list[str], token: str) -> None:
    """Start ``args.workers`` workers on one port, serve the admin port, drain on SIGTERM."""
    probe = bind(args.host, args.port, backlog=1, reuse_port=True, listen=False)
    port = int(probe.getsockname()[1])
    stop = _stop_event()
    with tempfile.TemporaryDirectory(prefix="commercekit-cdn-") as folder:
        controls = [str(Path(folder) / f"worker-{n}.sock") for n in range(args.workers)]
        try:  # the probe holds the port (bound, not listening) until the workers listen on it
            workers = list(await asyncio.gather(*(_start(argv, port, c) for c in controls)))
        finally:
            probe.close()
        print(
            f"commercekit.cdn serving http://{args.host}:{port} -> {args.origin} "
            f"({args.workers} workers)",
            flush=True,
        )
        admin: ProxyServer | None = None
        if args.admin_port is not None:
            admin = await serve(
                FanOutAdmin(controls, token=token), host=args.admin_host, port=args.admin_port
            )
            at = admin.sockets[0].getsockname()
            print(f"commercekit.cdn admin on http://{at[0]}:{at[1]}", flush=True)
        while not stop.is_set():
            done = await _first_exit(workers, stop)
            for n in done:
                if not stop.is_set():
                    log.warning("worker %d exited with %s; restarting it", n, workers[n].returncode)
                    workers[n] = await _start(argv, port, controls[n])
        if admin is not None:
            admin.close()
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                await asyncio.wait_for(worker.wait(), args.drain_timeout + 5)
            except TimeoutError:
                worker.kill()
                await worker.wait()


async def _start(argv: list[str], port: int, control: str) -> asyncio.subprocess.Process:
    with contextlib.suppress(FileNotFoundError):
        Path(control).unlink()
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "commercekit.cdn",
        *argv,
        "--port",
        str(port),
        "--worker-control",
        control,
        stdout=asyncio.subprocess.PIPE,
    )
    if worker.stdout is None:  # asked for a pipe above; a check, not an assert (python -O)
        raise RuntimeError("a worker started without its stdout pipe")
    ready = await worker.stdout.readline()  # the worker's "serving" line: it is listening
    if not ready:
        raise RuntimeError(f"a worker exited before serving (status {await worker.wait()})")
    asyncio.get_running_loop().create_task(_relay(worker.stdout))
    return worker


async def _relay(stream: asyncio.StreamReader) -> None:
    """Copy a worker's stdout (its access log) to ours, line by line."""
    while line := await stream.readline():
        sys.stdout.buffer.write(line)
        sys.stdout.flush()


async def _first_exit(workers: list[asyncio.subprocess.Process], stop: asyncio.Event) -> list[int]:
    waits = [asyncio.ensure_future(w.wait()) for w in workers]
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([*waits, stopping], return_when=asyncio.FIRST_COMPLETED)
    for task in (*waits, stopping):
        task.cancel()
    return [n for n, w in enumerate(workers) if w.returncode is not None]
