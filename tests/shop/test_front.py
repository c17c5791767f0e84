"""The front balancer against loopback servers: deadlines and framing (in this process), drain."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import io
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from shop.front import Front

from tests.shop._procs import free_port, shop_env, start, stop

T = TypeVar("T")


def _run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run *scenario* on an event loop of its own thread (Playwright's may run in this one)."""
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(asyncio.run(scenario()))
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=30)
    if errors:
        raise errors[0]
    return results[0]


async def _serve(handler: object) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    return server, int(server.sockets[0].getsockname()[1])


async def _ask(front: Front, request: bytes, end: bytes = b"\n") -> bytes:
    """Send *request* through *front*; read the answer until it ends with *end*."""
    server, port = await _serve(front.connection)

    async def sweeper() -> None:  # what serve_front runs every 0.5 s, faster
        while True:
            await asyncio.sleep(0.05)
            front.sweep()

    sweeping = asyncio.create_task(sweeper())
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        answer = b""
        while not answer.endswith(end):
            data = await asyncio.wait_for(reader.read(65536), 10)
            if not data:
                break
            answer += data
        writer.close()
        deadline = time.monotonic() + 5
        while front.clients and time.monotonic() < deadline:  # let its handler end
            await asyncio.sleep(0.01)
        return answer
    finally:
        sweeping.cancel()
        server.close()


def test_a_hung_app_server_is_cut_at_the_deadline() -> None:
    async def scenario() -> tuple[bytes, float, Front]:
        async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(65536)
            await reader.read(65536)  # never answers: waits until the front hangs up
            writer.close()

        upstream, port = await _serve(hang)
        front = Front([f"127.0.0.1:{port}"], read_timeout_s=0.3, log=io.StringIO())
        started = time.monotonic()
        try:
            answer = await _ask(front, b"GET / HTTP/1.1\r\nHost: shop\r\n\r\n")
        finally:
            upstream.close()
        return answer, time.monotonic() - started, front

    answer, took, front = _run(scenario)
    assert answer.startswith(b"HTTP/1.1 503 "), answer  # one server, so nowhere to retry
    assert took < 3
    assert front.waiting == {}
    assert front.timed_out == set()


def test_a_body_ended_by_the_close_is_rechunked_whole() -> None:
    async def scenario() -> bytes:
        async def old_style(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(65536)  # HTTP/1.0 style: no length, the close ends the body
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nhello ")
            await writer.drain()
            writer.write(b"world")
            writer.close()

        upstream, port = await _serve(old_style)
        front = Front([f"127.0.0.1:{port}"], log=io.StringIO())
        try:
            return await _ask(front, b"GET / HTTP/1.1\r\nHost: shop\r\n\r\n", b"0\r\n\r\n")
        finally:
            upstream.close()

    answer = _run(scenario)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head
    assert body.endswith(b"0\r\n\r\n")
    chunks = body.split(b"\r\n")
    assert b"".join(chunks[1::2]) == b"hello world"


def _dies_after_its_head(hits: list[str]) -> Callable[..., Coroutine[Any, Any, None]]:
    """An app server that sends a response head, then dies (SIGKILLed between head and body)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        hits.append("dying")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()  # a reset, as a killed process's socket

    return handler


def _answers(hits: list[str], body: bytes) -> Callable[..., Coroutine[Any, Any, None]]:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            hits.append("answered")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        writer.close()

    return handler


def _two_servers(request: bytes) -> tuple[bytes, list[str]]:
    """*request* through a front over a server that dies after its head and a good one."""

    async def scenario() -> tuple[bytes, list[str]]:
        hits: list[str] = []
        dying, dying_port = await _serve(_dies_after_its_head(hits))
        good, good_port = await _serve(_answers(hits, b"hello"))
        backends = [f"127.0.0.1:{dying_port}", f"127.0.0.1:{good_port}"]
        front = Front(backends, log=io.StringIO())
        # The visitor whose first server is the dying one.
        sid = next(f"v{i}" for i in range(1000) if front.pool.pick(f"v{i}") == backends[0])
        try:
            answer = await _ask(front, request.replace(b"SID", sid.encode()), b"hello")
        finally:
            for conns in front.idle.values():  # the pooled connection to the good one
                for _, w, _ in conns:
                    w.close()
            await asyncio.sleep(0.05)  # the good server's handler sees the close
            dying.close()
            good.close()
        return answer, hits

    return _run(scenario)


def test_a_get_whose_server_dies_after_its_head_is_answered_by_the_next() -> None:
    answer, hits = _two_servers(b"GET /p HTTP/1.1\r\nHost: shop\r\nCookie: sid=SID\r\n\r\n")
    assert hits == ["dying", "answered"]
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert answer.endswith(b"\r\n\r\nhello"), answer  # one whole answer, not a cut one


def test_a_post_whose_server_dies_after_its_head_is_a_502_never_resent() -> None:
    answer, hits = _two_servers(
        b"POST /p HTTP/1.1\r\nHost: shop\r\nCookie: sid=SID\r\ncontent-length: 2\r\n\r\n{}"
    )
    assert hits == ["dying"]
    assert answer.startswith(b"HTTP/1.1 502 "), answer


def test_a_large_answer_is_streamed_before_it_is_whole() -> None:
    """Past HOLD_BYTES the client gets what came while the server is still sending."""
    from shop.front import HOLD_BYTES

    async def scenario() -> tuple[int, bytes]:
        release = asyncio.Event()

        async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(65536)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (HOLD_BYTES * 3))
            writer.write(b"x" * (HOLD_BYTES * 2))
            await writer.drain()
            await release.wait()  # the rest only once the client saw the first part
            writer.write(b"x" * HOLD_BYTES)
            await writer.drain()
            writer.close()

        upstream, port = await _serve(big)
        front = Front([f"127.0.0.1:{port}"], log=io.StringIO())
        server, front_port = await _serve(front.connection)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", front_port)
            writer.write(b"GET / HTTP/1.1\r\nHost: shop\r\n\r\n")
            seen = b""
            while len(seen) < HOLD_BYTES:  # before the server sent the whole body
                seen += await asyncio.wait_for(reader.read(1 << 20), 10)
            early = len(seen)
            release.set()
            while not seen.endswith(b"x" * 16) or seen.count(b"x") < HOLD_BYTES * 3:
                seen += await asyncio.wait_for(reader.read(1 << 20), 10)
            writer.close()
            for conns in front.idle.values():
                for _, w, _ in conns:
                    w.close()
            return early, seen
        finally:
            server.close()
            upstream.close()

    early, answer = _run(scenario)
    assert early >= HOLD_BYTES
    assert answer.partition(b"\r\n\r\n")[2] == b"x" * (HOLD_BYTES * 3)


class _Slow(http.server.BaseHTTPRequestHandler):
    """An app server whose ``/slow`` answers after 1 s (``/healthz`` at once)."""

    protocol_version = "HTTP/1.1"
    arrived = threading.Event()

    def do_GET(self) -> None:
        if self.path == "/slow":
            _Slow.arrived.set()
            time.sleep(1.0)
        body = b"done\n" if self.path == "/slow" else b"ok\n"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_sigterm_finishes_the_request_in_flight_then_exits(tmp_path: Path) -> None:
    """Graceful drain: the front stops accepting, answers what it holds (closing), exits 0."""
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    port = free_port()
    address = f"127.0.0.1:{backend.server_address[1]}"
    front = start(
        ["front", "--port", str(port), "--backends", address],
        shop_env(tmp_path),
        tmp_path / "front.log",
    )
    answers: list[httpx.Response | Exception] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # up once its health checks saw the server
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            time.sleep(0.1)

        def slow() -> None:
            try:
                answers.append(httpx.get(f"http://127.0.0.1:{port}/slow", timeout=10))
            except httpx.HTTPError as exc:
                answers.append(exc)

        client = threading.Thread(target=slow)
        client.start()
        assert _Slow.arrived.wait(10), "the request did not reach the app server"
        front.send_signal(signal.SIGTERM)
        client.join(timeout=15)
        assert front.wait(timeout=15) == 0
    finally:
        stop(front)
        backend.shutdown()
        backend.server_close()
    [answer] = answers
    assert isinstance(answer, httpx.Response), answer
    assert (answer.status_code, answer.text) == (200, "done\n")
    assert answer.headers["connection"] == "close"
    with pytest.raises(httpx.ConnectError):  # no longer accepting
        httpx.get(f"http://127.0.0.1:{port}/healthz")
