"""The proxy's HTTP/1.1 server over loopback: limits, deadlines, keep-alive, the hit path, admin."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
import uvloop

from commercekit.cdn import (
    EdgeCache,
    HttpOrigin,
    MemoryStore,
    ProxyHandler,
    PurgeSelector,
    serve,
)
from commercekit.cdn._servers._admin import AdminHandler, merge_metrics, parse_purge
from commercekit.cdn._servers._serve import AccessLog, ProxyServer
from commercekit.errors import InvalidInputError
from commercekit.metrics import PrometheusMetrics

from ._loopback import Answer, LoopbackServer, Seen


def origin(seen: Seen) -> Answer:
    if seen.path.startswith("/slow"):
        time.sleep(0.4)
    headers = {"cache-control": "max-age=600", "surrogate-key": "t-" + seen.path[1:2]}
    return 200, headers, f"body {seen.path}".encode()


@asynccontextmanager
async def running(url: str, **options: object) -> AsyncIterator[tuple[ProxyServer, int]]:
    edge = EdgeCache(HttpOrigin(url), MemoryStore(16 * 1024 * 1024))
    server = await serve(ProxyHandler(edge), port=0, **options)  # type: ignore[arg-type]
    try:
        yield server, server.sockets[0].getsockname()[1]
    finally:
        await server.drain(1.0)
        await edge.aclose()


async def exchange(port: int, raw: bytes, *, until: bytes | None = None) -> bytes:
    """Send *raw* on a new connection; read until *until* appears, or until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    data = b""
    try:
        async with asyncio.timeout(5):
            while until is None or until not in data:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
    finally:
        writer.close()
    return data


def run(url_test: Callable[[str], Awaitable[None]]) -> None:
    with LoopbackServer(origin) as o:
        asyncio.run(url_test(o.url))


def test_http10_keep_alive_pipelining_and_505() -> None:
    async def main(url: str) -> None:
        async with running(url) as (_, port):
            one = b"GET /a HTTP/1.0\r\nHost: s\r\nConnection: keep-alive\r\n\r\n"
            got = await exchange(port, one + one, until=b"hit")
            assert got.count(b"HTTP/1.1 200 OK") == 2, got
            assert got.count(b"connection: keep-alive") == 2
            assert got.endswith(b"body /a")
            plain = await exchange(port, b"GET /a HTTP/1.0\r\nHost: s\r\n\r\n")
            assert b"connection: close" in plain  # HTTP/1.0 without keep-alive: closed
            pipelined = b"GET /b HTTP/1.1\r\nHost: s\r\n\r\nGET /c HTTP/1.1\r\nHost: s\r\n\r\n"
            got = await exchange(port, pipelined, until=b"body /c")
            assert got.index(b"body /b") < got.index(b"body /c")
            bad = await exchange(port, b"GET /a HTTP/9.9\r\nHost: s\r\n\r\n")
            assert bad.startswith(b"HTTP/1.1 505 ")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /p HTTP/1.1\r\nHost: s\r\nContent-Length: 2\r\n")
            writer.write(b"Expect: 100-continue\r\n\r\n")  # waits for 100 before the body
            assert await asyncio.wait_for(reader.readline(), 2) == b"HTTP/1.1 100 Continue\r\n"
            writer.write(b"hi")
            await asyncio.wait_for(reader.readline(), 2)  # the blank line after the 100
            assert (await asyncio.wait_for(reader.readline(), 2)).startswith(b"HTTP/1.1 200 ")
            writer.close()

    run(main)


def test_the_hit_path_answers_as_the_edge_does_and_never_after_a_purge() -> None:
    async def main(url: str) -> None:
        async with running(url) as (server, port):
            request = b"GET /h?q=1 HTTP/1.1\r\nHost: Shop.Test\r\n\r\n"
            await exchange(port, request, until=b"body /h?q=1")
            fast = await exchange(port, request, until=b"body /h?q=1")
            handler = server._state.responder
            assert isinstance(handler, ProxyHandler)
            _status, headers, body = await handler.respond("GET", "/h?q=1", [("host", "shop.test")])
            fast_head, _, fast_body = fast.partition(b"\r\n\r\n")
            assert fast_body == body
            fast_fields = sorted(line.lower() for line in fast_head.split(b"\r\n")[1:])
            slow_fields = sorted((k + b": " + v).lower() for k, v in headers)
            assert fast_fields == slow_fields
            assert b"cache-status: edge; hit" in fast_head
            await handler.edge.purge(PurgeSelector.urls("http://shop.test/h?q=1"))
            again = await exchange(port, request, until=b"body /h?q=1")
            assert b"cache-status: edge; fwd=uri-miss" in again
            ranged = request.replace(b"\r\n\r\n", b"\r\nRange: bytes=0-3\r\n\r\n")
            part = await exchange(port, ranged, until=b"\r\n\r\nbody")
            assert part.startswith(b"HTTP/1.1 206 ")  # a Range goes the ordinary way

    run(main)


def test_limits_and_the_header_deadline() -> None:
    async def main(url: str) -> None:
        async with running(url, header_timeout_s=0.5, idle_timeout_s=0.5) as (_, port):
            reply, cut_after = await asyncio.to_thread(_trickle, port)
            assert reply.startswith(b"HTTP/1.1 408 ")
            assert (
                0.4 < cut_after < 3.0
            )  # cut at the deadline (0.5 s), with a loaded machine's margin
            # idle keep-alive connections are closed after idle_timeout_s
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /a HTTP/1.1\r\nHost: s\r\n\r\n")
            async with asyncio.timeout(3):
                while await reader.read(65536) != b"":
                    pass
            writer.close()
            big = b"POST /p HTTP/1.1\r\nHost: s\r\nContent-Length: 99999999\r\n\r\n"
            assert (await exchange(port, big)).startswith(b"HTTP/1.1 413 ")

    run(main)


def test_1000_connections_at_once_are_accepted_within_1s_and_rss_stays_bounded() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2200:
        pytest.skip(f"needs 2,200 file descriptors, the limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2200), hard))

    async def main(url: str) -> None:
        async with running(url) as (server, port):
            rss_before = _rss_bytes()
            started = time.monotonic()
            # the client opens its 1,000 sockets from another thread, all at once
            opened = asyncio.ensure_future(asyncio.to_thread(_open_at_once, port, 1000))
            while server.connections < 1000 and time.monotonic() - started < 5:
                await asyncio.sleep(0.005)
            accepted_in = time.monotonic() - started
            sockets = await opened
            try:
                assert server.connections == 1000
                print(f"1,000 connections accepted in {accepted_in:.3f} s")
                assert accepted_in < 1.0, accepted_in
                await asyncio.sleep(0.1)
                grown = _rss_bytes() - rss_before  # both ends live in this process
                print(f"1,000 idle connections: RSS grew {grown / 2**20:.1f} MiB")
                assert grown < 24 * 1024 * 1024, grown
                last = sockets[-1]  # and usable
                last.setblocking(True)
                last.settimeout(5)
                last.sendall(b"GET /a HTTP/1.1\r\nHost: s\r\n\r\n")
                assert (await asyncio.to_thread(last.recv, 100)).startswith(b"HTTP/1.1 200")
            finally:
                for sock in sockets:
                    sock.close()

    with LoopbackServer(origin) as o:
        uvloop.run(main(o.url))  # as serve runs it


def _trickle(port: int) -> tuple[bytes, float]:
    """Send a header line every 100 ms, never ending the section; return the reply and when."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: s\r\n")
        while time.monotonic() - started < 5:
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                return sock.recv(65536), time.monotonic() - started
            sock.sendall(b"x-slow: 1\r\n")
    return b"", time.monotonic() - started


def _open_at_once(port: int, count: int) -> list[socket.socket]:
    """Start *count* non-blocking connects, then wait until every one has completed."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        sockets.append(sock)
    poll = select.poll()
    for sock in sockets:
        poll.register(sock, select.POLLOUT)
    pending = len(sockets)
    deadline = time.monotonic() + 10
    while pending and time.monotonic() < deadline:
        for fd, _ in poll.poll(500):
            poll.unregister(fd)
            pending -= 1
    return sockets


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_drain_finishes_the_response_in_progress_then_closes() -> None:
    # Events, not sleeps: the origin holds /slow until the drain has begun, so the
    # response is in progress when it does however slow a loaded machine is.
    arrived, release = threading.Event(), threading.Event()

    def held(seen: Seen) -> Answer:
        if seen.path == "/slow":
            arrived.set()
            release.wait(10)
        return 200, {"cache-control": "max-age=600"}, f"body {seen.path}".encode()

    async def until(done: Callable[[], bool]) -> None:
        for _ in range(500):  # at most 10 s: a bound, not a pace
            if done():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the condition did not come true in 10 s")

    async def main(url: str) -> None:
        edge = EdgeCache(HttpOrigin(url))
        server = await serve(ProxyHandler(edge), port=0)
        port = server.sockets[0].getsockname()[1]
        slow = asyncio.ensure_future(exchange(port, b"GET /slow HTTP/1.1\r\nHost: s\r\n\r\n"))
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        await until(lambda: arrived.is_set() and server.connections == 2)
        draining = asyncio.ensure_future(server.drain(5))
        await until(lambda: not server.sockets)  # the listener is closed: the drain has begun
        release.set()
        await draining
        got = await slow
        assert got.startswith(b"HTTP/1.1 200 ")
        assert b"connection: close" in got
        assert got.endswith(b"body /slow")
        assert await asyncio.wait_for(idle_reader.read(), 2) == b""
        idle_writer.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        await edge.aclose()

    with LoopbackServer(held) as o:
        try:
            asyncio.run(main(o.url))
        finally:
            release.set()


def test_a_client_that_leaves_before_its_answer_is_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main(url: str) -> None:
        async with running(url) as (_, port):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /slow-gone HTTP/1.1\r\nHost: s\r\n\r\n")
            await writer.drain()
            writer.close()  # gone before the origin's answer (0.4 s)
            await asyncio.sleep(1.2)

    with caplog.at_level(logging.WARNING, logger="commercekit.cdn"), LoopbackServer(origin) as o:
        uvloop.run(main(o.url))  # uvloop raises on a write to a closed transport
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_client_that_shuts_its_side_after_the_request_still_gets_the_answer() -> None:
    def half_close(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /slow-half HTTP/1.0\r\nHost: s\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)  # as `printf ... | nc` does
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            return data

    async def main(url: str) -> None:
        async with running(url) as (_, port):
            got = await asyncio.to_thread(half_close, port)
            assert got.startswith(b"HTTP/1.1 200 ")
            assert got.endswith(b"body /slow-half")

    run(main)


def test_access_log_lines() -> None:
    async def main(url: str) -> None:
        out = io.StringIO()
        async with running(url, access_log=AccessLog(out, flush_s=0.01)) as (_, port):
            raw = b'GET /q?a="b" HTTP/1.1\r\nHost: s\r\nUser-Agent: t/1\r\nReferer: r\r\n\r\n'
            await exchange(port, raw, until=b"body /q")
            await asyncio.sleep(0.05)
        line = out.getvalue().splitlines()[0]
        assert line.startswith("127.0.0.1 - - [")
        assert line.endswith('] "GET /q?a=\\"b\\" HTTP/1.1" 200 17 "r" "t/1"'), line

    run(main)


def test_admin_purge_is_authenticated_and_metrics_are_prometheus() -> None:
    async def main(url: str) -> None:
        metrics = PrometheusMetrics()
        edge = EdgeCache(HttpOrigin(url), metrics=metrics)
        proxy = await serve(ProxyHandler(edge), port=0)
        admin = await serve(
            AdminHandler(edge, token="s3cret", exposition=metrics.exposition), port=0
        )
        port, admin_port = (s.sockets[0].getsockname()[1] for s in (proxy, admin))
        for path in ("/a1", "/a2", "/b1"):
            await exchange(port, f"GET {path} HTTP/1.1\r\nHost: s\r\n\r\n".encode(), until=b"body")

        async def purge(doc: object, token: str = "s3cret") -> bytes:
            body = json.dumps(doc).encode()
            raw = (
                f"POST /purge HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            return await exchange(port=admin_port, raw=raw, until=b"}\n")

        assert b" 401 " in (await purge({"kind": "url", "values": ["http://s/a1"]}, "wrong"))
        assert b'{"purged": 1}' in await purge({"kind": "url", "values": ["http://s/a1"]})
        assert b'{"purged": 1}' in await purge({"kind": "tag", "values": ["t-b"], "soft": True})
        assert b'{"purged": 1}' in await purge({"kind": "prefix", "values": ["http://s/a"]})
        assert b" 400 " in await purge({"kind": "nope"})
        text = await exchange(admin_port, b"GET /metrics HTTP/1.0\r\nHost: a\r\n\r\n")
        assert b"commercekit_cdn_hits_total" in text
        await proxy.drain(1)
        await admin.drain(1)
        await edge.aclose()

    run(main)


def test_merge_metrics_keeps_families_together() -> None:
    one = b'# HELP a_total A\n# TYPE a_total counter\na_total{x="1"} 1.0\n# TYPE b gauge\nb 2.0\n'
    two = b'# HELP a_total A\n# TYPE a_total counter\na_total{x="1"} 3.0\n# TYPE b gauge\nb 4.0\n'
    assert merge_metrics([one, two]).decode().splitlines() == [
        "# HELP a_total A",
        "# TYPE a_total counter",
        'a_total{x="1",worker="0"} 1.0',
        'a_total{x="1",worker="1"} 3.0',
        "# TYPE b gauge",
        'b{worker="0"} 2.0',
        'b{worker="1"} 4.0',
    ]


def test_cli_workers_share_the_port_and_the_admin_port_fans_out() -> None:
    command = [sys.executable, "-m", "commercekit.cdn", "serve", "--port", "0", "--workers", "2"]
    command += ["--admin-port", "0", "--access-log", "off", "--origin"]
    env = {**os.environ, "COMMERCEKIT_CDN_ADMIN_TOKEN": "t0ken"}
    with (
        LoopbackServer(origin) as o,
        subprocess.Popen([*command, o.url], stdout=subprocess.PIPE, text=True, env=env) as proc,
    ):
        assert proc.stdout is not None
        try:
            url = proc.stdout.readline().split()[2]
            admin = proc.stdout.readline().split()[-1]
            with httpx.Client(timeout=10) as client:
                for _ in range(6):  # new connections, spread over both workers
                    assert (
                        client.get(url + "/w", headers={"connection": "close"}).status_code == 200
                    )
                refused = client.post(admin + "/purge", json={"kind": "all"})
                assert refused.status_code == 401
                purged = client.post(
                    admin + "/purge",
                    json={"kind": "url", "values": [url + "/w"]},
                    headers={"authorization": "Bearer t0ken"},
                )
                assert purged.json()["workers"] == 2
                metrics = client.get(admin + "/metrics").text
                assert 'worker="0"' in metrics
                assert 'worker="1"' in metrics
        finally:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def test_serve_redis_options_reach_the_store() -> None:
    from commercekit.cdn import RedisStore, TieredStore
    from commercekit.cdn.__main__ import _parser
    from commercekit.cdn._servers._workers import _edge

    argv = ["serve", "--origin", "http://127.0.0.1:9", "--redis", "redis://127.0.0.1:6379/0"]
    argv += ["--redis-timeout", "0.1", "--redis-max-entry-bytes", str(32 << 20)]

    async def main() -> None:
        edge = _edge(_parser().parse_args(argv), None)
        store = edge.store
        assert isinstance(store, TieredStore)
        assert isinstance(store.far, RedisStore)
        assert store.far.timeout_s == 0.1
        assert store.far.max_entry_bytes == 32 << 20
        await edge.aclose()
        bare = _edge(_parser().parse_args([*argv, "--near-bytes", "0"]), None)
        assert isinstance(bare.store, RedisStore)
        await bare.aclose()

    asyncio.run(main())


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b"[" * 3000 + b"]" * 3000, b"\xff\xfe", b"9" * 5000, b"[]", b'"all"'],
)
def test_a_crafted_purge_body_is_a_typed_error(body: bytes) -> None:
    with pytest.raises(InvalidInputError, match="the purge body"):
        parse_purge(body)
