"""The front load balancer: HTTP/1.1 on asyncio streams, parsed by httptools, placed by Maglev.

* **Sticky** by the visitor's ``sid`` cookie (a new visitor gets one here), on a
  :class:`commercekit.balancer.MaglevBalancer`: a visitor stays on one app
  server, and only the visitors of a server that leaves move.
* **Active health checks** (:class:`HealthChecker` probing ``/healthz``) and
  **passive ejection** (:class:`OutlierDetection`: connection failures and
  502/503/504 answers reported per server).
* **Retries** a request on the visitor's next server when the connection to
  its server fails before any of its answer reached the client (answers are
  held until whole or 64 KB): always when the connection could not be opened
  (nothing was sent), and for idempotent methods (GET, HEAD, PUT, DELETE,
  OPTIONS) when it broke after sending.
* ``X-Forwarded-For`` / ``-Proto`` / ``-Host``; keep-alive on both sides
  (a pool of idle connections per server); request bodies in either framing
  (chunked ones are forwarded with a ``Content-Length``), responses streamed
  as they come (re-chunked when the server chunked them).
* **Graceful drain** on SIGTERM: stop accepting, finish what is in flight
  (``Connection: close``), close idle connections.
* ``/healthz`` and ``/metrics`` of the balancer itself; one access-log line
  per request (the app servers' format, with the server it went to).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TextIO

import httptools

from commercekit.balancer import (
    HealthChecker,
    HttpProbe,
    MaglevBalancer,
    NodeHealth,
    OutlierDetection,
)
from commercekit.errors import UnavailableError
from commercekit.metrics import PrometheusMetrics

__all__ = ["Front", "run_front"]

HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
MAX_TRIES = 3  # servers one request may be tried on
MAX_BODY = 1 << 20
HOLD_BYTES = 1 << 16  # an answer is relayed once whole or past this: before, a failure is retried
REASONS: dict[int, bytes] = {200: b"OK"}  # filled from HTTPStatus as statuses are seen


@dataclass
class _Request:
    method: str = ""
    url: bytes = b""
    version: str = "1.1"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    keep_alive: bool = True
    too_big: bool = False


class _RequestReader:
    """httptools callbacks collecting whole requests (bodies are small: forms and JSON)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.current = _Request()
        self.done: list[_Request] = []

    def on_url(self, url: bytes) -> None:
        self.current.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        if len(self.current.body) + len(body) > MAX_BODY:
            self.current.too_big = True
        else:
            self.current.body += body

    def on_message_complete(self) -> None:
        p = self.parser
        self.current.method = p.get_method().decode()
        self.current.version = p.get_http_version()
        self.current.keep_alive = p.should_keep_alive()
        self.done.append(self.current)
        self.current = _Request()


class _ResponseReader:
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.pieces: list[bytes] = []
        self.complete = False
        self.keep_alive = False
        self.close_delimited = False  # no length and not chunked: the body ends at EOF

    def feed(self, data: bytes) -> bool:
        """Parse *data* (the parser calls the ``on_*`` methods): True once the answer is whole."""
        self.parser.feed_data(data)
        return self.complete

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.pieces.append(bytes(body))

    def on_message_complete(self) -> None:
        # Ask now: once the message is complete the parser resets, and
        # should_keep_alive() answers False (every upstream connection would close).
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True


class _Broken(Exception):
    """The upstream connection failed; *sent* says whether the request went out."""

    def __init__(self, sent: bool) -> None:
        self.sent = sent


class _ClientGone(Exception):
    """The client closed its connection while its answer was being relayed."""


class Front:
    """The balancer process's state: the server placement, the connection pools, metrics."""

    def __init__(
        self,
        backends: Sequence[str],
        *,
        check_interval_s: float = 0.5,
        connect_timeout_s: float = 1.0,
        read_timeout_s: float = 30.0,
        idle_timeout_s: float = 60.0,
        log: TextIO | None = None,
    ) -> None:
        self.metrics = PrometheusMetrics()
        self.pool = MaglevBalancer(
            list(backends),
            name="front",
            metrics=self.metrics,
            outlier_detection=OutlierDetection(
                consecutive_failures=2, base_ejection_s=5.0, max_ejected_fraction=0.5
            ),
        )
        self.checker = HealthChecker(
            self.pool,
            HttpProbe("http://{node}/healthz"),
            interval_s=check_interval_s,
            timeout_s=1.0,
            rise=2,
            fall=2,
            metrics=self.metrics,
        )
        self.backends = list(backends)
        self.idle: dict[str, list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]]] = {}
        self.connect_timeout_s, self.read_timeout_s = connect_timeout_s, read_timeout_s
        self.log = log or sys.stdout
        self.draining = False
        self.in_flight = 0
        # Each client connection and when it last finished a request (inf: in one now);
        # the sweeper closes those idle for longer than idle_timeout_s.
        self.clients: dict[asyncio.StreamWriter, float] = {}
        # Each upstream connection waiting for an answer, and until when it may wait;
        # sweep() closes (and puts in timed_out) those past their deadline.
        self.waiting: dict[asyncio.StreamWriter, float] = {}
        self.timed_out: set[asyncio.StreamWriter] = set()
        self.idle_timeout_s = idle_timeout_s
        self._stamp_at, self._stamp_text = 0, ""
        m = self.metrics
        self._requests: dict[tuple[str, int], Any] = {}
        self.retries = m.counter("shop_front_retries_total", description="Requests retried")

        def per_backend(name: str, description: str) -> dict[str, Any]:
            return {
                b: m.counter(name, description=description, tags={"backend": b}) for b in backends
            }

        self.failures = per_backend(
            "shop_front_upstream_failures_total", "Connections to an app server that failed"
        )
        self.opened = per_backend(
            "shop_front_upstream_connections_total",
            "Connections opened to an app server (the rest reuse idle ones)",
        )
        self.latency = m.histogram(
            "shop_front_request_duration_seconds", description="Time to answer a request"
        )

    def _stamp(self) -> str:
        """The log line's time, formatted once a second."""
        now = int(time.time())
        if now != self._stamp_at:
            self._stamp_at = now
            self._stamp_text = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
        return self._stamp_text

    def _count(self, backend: str, status: int) -> None:
        key = (backend, status)
        c = self._requests.get(key)
        if c is None:
            c = self._requests[key] = self.metrics.counter(
                "shop_front_requests_total",
                description="Requests answered by the front balancer",
                tags={"backend": backend, "status": str(status)},
            )
        c.inc()

    # -- upstream ------------------------------------------------------------------------

    async def _connect(self, node: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        idle = self.idle.get(node)
        while idle:
            reader, writer, at = idle.pop()
            # Reuse only connections idle for less than the app servers' keep-alive
            # timeout (uvicorn: 5 s), so a closed one means the server failed.
            if time.monotonic() - at < 2.0 and not writer.is_closing() and not reader.at_eof():
                return reader, writer, True
            writer.close()
        host, _, port = node.rpartition(":")
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port)), self.connect_timeout_s
            )
        except (OSError, TimeoutError) as exc:
            raise _Broken(sent=False) from exc
        self.opened[node].inc()
        return reader, writer, False

    async def _exchange(
        self,
        node: str,
        req: _Request,
        head: bytes,
        client: asyncio.StreamWriter,
        extra: list[tuple[bytes, bytes]],
    ) -> tuple[int, bool]:
        """Send *req* to *node* and stream the answer to *client*: (status, client keep-alive).

        The answer is held until it is whole or passes :data:`HOLD_BYTES`, then
        streamed: an app server that dies before that (SIGKILLed between its
        head and its body, say) has sent the client nothing, so an idempotent
        request is tried on the next server instead of ending in a cut answer.
        Holding also makes a small answer one write to the client (on loopback
        every write is a segment the kernel delivers: fewer is less CPU).
        """
        reader, writer, reused = await self._connect(node)
        try:
            writer.write(head + req.body if req.body else head)
        except OSError as exc:
            writer.close()
            raise _Broken(sent=not reused) from exc
        res = _ResponseReader()
        headed = started = chunked = False  # head made; something relayed to the client
        out: list[bytes] = []  # made, not yet relayed
        held = 0
        keep = req.keep_alive and not self.draining
        # One deadline for the whole answer, kept by sweep(): a timer per request
        # costs more than the rest of the bookkeeping (the app servers answer in
        # milliseconds; read_timeout_s means a hung one, and sweep() closes it).
        self.waiting[writer] = time.monotonic() + self.read_timeout_s
        try:
            while not res.complete:
                try:
                    data = await reader.read(65536)
                except OSError as exc:
                    raise _Broken(sent=True) from exc
                if writer in self.timed_out:
                    raise _Broken(sent=True)
                if not data:
                    if headed and res.close_delimited:  # the close ends this body
                        res.complete = True
                        out.append(b"0\r\n\r\n")
                        break
                    raise _Broken(sent=True)
                try:
                    complete = res.feed(data)
                except httptools.HttpParserError as exc:
                    raise _Broken(sent=True) from exc
                if res.headers_done and not headed:
                    headed = True
                    keep = keep and not self.draining  # a drain that began meanwhile closes it
                    chunked = self._head(req, res, extra, keep, out)
                if chunked:
                    out += [b"%x\r\n%s\r\n" % (len(p), p) for p in res.pieces]
                    if complete:
                        out.append(b"0\r\n\r\n")
                else:
                    out += res.pieces
                held += len(data)
                res.pieces.clear()
                if headed and (started or held > HOLD_BYTES) and not res.complete:
                    started = True
                    _send(client, b"".join(out))
                    out.clear()
                    if client.transport.get_write_buffer_size() > 1 << 16:
                        with contextlib.suppress(OSError):
                            await client.drain()
            _send(client, b"".join(out))  # the whole answer, or its last part
            started = True
        except _Broken:
            writer.close()
            if started:  # the client saw a partial answer: close it so it knows
                return res.parser.get_status_code(), False
            raise
        except _ClientGone:  # nobody to answer; the rest of this answer is not read
            writer.close()
            return res.parser.get_status_code() if started else 499, False
        finally:
            del self.waiting[writer]
            self.timed_out.discard(writer)
        if res.keep_alive and req.method != "HEAD":
            self.idle.setdefault(node, []).append((reader, writer, time.monotonic()))
        else:
            writer.close()
        return res.parser.get_status_code(), keep

    @staticmethod
    def _head(
        req: _Request,
        res: _ResponseReader,
        extra: list[tuple[bytes, bytes]],
        keep: bool,
        out: list[bytes],
    ) -> bool:
        """Append the client's response head to *out*; True when the body is re-chunked."""
        status = res.parser.get_status_code()
        length = None
        out.append(b"HTTP/1.1 %d %s\r\n" % (status, _reason(status)))
        upstream_chunked = False
        for k, v in res.headers:
            name = k.lower()
            if name == b"content-length":
                length = v
            elif name == b"transfer-encoding":
                upstream_chunked = True
            elif name not in HOP:
                out += (k, b": ", v, b"\r\n")
        for k, v in extra:
            out += (k, b": ", v, b"\r\n")
        bodyless = req.method == "HEAD" or status in (204, 304) or status < 200
        chunked = length is None and not bodyless
        if length is not None:
            out += (b"content-length: ", length, b"\r\n")
        elif chunked:
            out.append(b"transfer-encoding: chunked\r\n")
        out.append(b"connection: keep-alive\r\n\r\n" if keep else b"connection: close\r\n\r\n")
        res.close_delimited = chunked and not upstream_chunked
        if req.method == "HEAD":
            res.complete = True
        return chunked

    # -- one request ---------------------------------------------------------------------

    async def handle(self, req: _Request, client: asyncio.StreamWriter, peer: str) -> bool:
        started = time.perf_counter()
        path = req.url.split(b"?", 1)[0]
        if path in (b"/healthz", b"/metrics"):
            status, keep, backend = await self._own(path, req, client), req.keep_alive, "front"
        elif req.too_big:
            status, keep, backend = 413, False, "front"
            _simple(client, 413, b"request body too large\n", keep=False)
        else:
            status, keep, backend = await self._proxy(req, client, peer)
        took = time.perf_counter() - started
        self.latency.record(took)
        self._count(backend, status)
        self.log.write(
            f'{peer} - - [{self._stamp()}] "{req.method} {req.url.decode("latin-1")} '
            f'HTTP/{req.version}" {status} - {took:.4f} front->{backend}\n'
        )
        return keep and not self.draining

    async def _proxy(
        self, req: _Request, client: asyncio.StreamWriter, peer: str
    ) -> tuple[int, bool, str]:
        key = _cookie(req.headers, b"sid")
        extra: list[tuple[bytes, bytes]] = []
        if key is None:  # a new visitor: name it here, so even its first request sticks
            key = secrets.token_urlsafe(12)
            _add_cookie(req.headers, b"sid=" + key.encode())
            extra.append((b"set-cookie", b"sid=%s; Path=/; HttpOnly; SameSite=Lax" % key.encode()))
        head = self._upstream_head(req, peer)
        tried: list[str] = []
        node = self._next(key, tried)
        while node is not None:
            tried.append(node)
            try:
                status, keep = await self._exchange(node, req, head, client, extra)
            except _Broken as broken:
                self.failures[node].inc()
                self.pool.report_failure(node)
                if broken.sent and req.method not in IDEMPOTENT:
                    _simple(
                        client,
                        502,
                        b"the app server failed; the request may have "
                        b"been processed: check before repeating it\n",
                        keep=False,
                    )
                    return 502, False, node
                node = self._next(key, tried)
                if node is not None:
                    self.retries.inc()
                continue
            if status in (502, 503, 504):
                self.pool.report_failure(node)
            else:
                self.pool.report_success(node)
            return status, keep, node
        _simple(client, 503, b"no app server is available\n", keep=req.keep_alive)
        return 503, req.keep_alive, "none"

    def _next(self, key: str, tried: list[str]) -> str | None:
        """The visitor's server (``pick``, the hot path), or after failures its next one."""
        try:
            if not tried:
                return self.pool.pick(key)
            if len(tried) >= MAX_TRIES:
                return None
            ranked = self.pool.pick_n(key, min(MAX_TRIES, len(self.backends)))
        except UnavailableError:
            return None
        return next((n for n in ranked if n not in tried), None)

    @staticmethod
    def _upstream_head(req: _Request, peer: str) -> bytes:
        """The request line and headers for the app server (hop-by-hop ones replaced)."""
        out = [b"%s %s HTTP/1.1\r\n" % (req.method.encode(), req.url)]
        chain = b""
        host = b""
        for k, v in req.headers:
            if k in HOP:
                continue
            if k.startswith(b"x-forw"):
                if k == b"x-forwarded-for":
                    chain += v + b", "
                continue
            if k == b"host":
                host = v
            out += (k, b": ", v, b"\r\n")
        out.append(
            b"x-forwarded-for: %s%s\r\nx-forwarded-proto: http\r\nx-forwarded-host: %s\r\n"
            b"content-length: %d\r\nconnection: keep-alive\r\n\r\n"
            % (chain, peer.encode(), host, len(req.body))
        )
        return b"".join(out)

    async def _own(self, path: bytes, req: _Request, client: asyncio.StreamWriter) -> int:
        if path == b"/metrics":
            body, ctype = self.metrics.exposition()
            _simple(client, 200, body, keep=req.keep_alive, ctype=ctype.encode())
            return 200
        states = {b: self.pool.health(b).value for b in self.backends}
        up = sum(1 for b in self.backends if self.pool.health(b) is NodeHealth.UP)
        status = 200 if up and not self.draining else 503
        body = json.dumps(
            {
                "status": "ok" if status == 200 else "unavailable",
                "backends": states,
                "draining": self.draining,
            }
        ).encode()
        _simple(client, status, body, keep=req.keep_alive, ctype=b"application/json")
        return status

    # -- connections ---------------------------------------------------------------------

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = (writer.get_extra_info("peername") or ("-",))[0]
        clients = self.clients
        clients[writer] = time.monotonic()
        parsed = _RequestReader()
        try:
            while not self.draining or parsed.done:
                if not parsed.done:
                    # No timer per read: sweep_idle() closes a connection idle too long,
                    # and the read then ends with b"".
                    data = await reader.read(65536)
                    if not data:
                        return
                    try:
                        parsed.parser.feed_data(data)
                    except httptools.HttpParserUpgrade:
                        _simple(writer, 400, b"upgrades are not supported\n", keep=False)
                        return
                    except httptools.HttpParserError:
                        _simple(writer, 400, b"malformed request\n", keep=False)
                        return
                    continue
                req = parsed.done.pop(0)
                clients[writer] = math.inf
                self.in_flight += 1
                try:
                    keep = await self.handle(req, writer, peer)
                except Exception as exc:  # a bug must cost one answer, not the process
                    self.log.write(f"front: {type(exc).__name__} answering {req.url!r}\n")
                    _simple(writer, 502, b"the balancer failed on this request\n", keep=False)
                    keep = False
                finally:
                    self.in_flight -= 1
                    clients[writer] = time.monotonic()
                if writer.transport.get_write_buffer_size() > 1 << 16:
                    await writer.drain()
                if not keep:
                    return
        except OSError:
            return
        finally:
            clients.pop(writer, None)
            with contextlib.suppress(OSError):
                writer.close()

    def sweep(self) -> None:
        """Close upstream connections past their answer's deadline (read_timeout_s)."""
        now = time.monotonic()
        for writer, deadline in list(self.waiting.items()):
            if deadline < now and writer not in self.timed_out:
                self.timed_out.add(writer)
                writer.close()

    def sweep_idle(self) -> None:
        """Close client connections idle for longer than idle_timeout_s."""
        limit = time.monotonic() - self.idle_timeout_s
        for writer, at in list(self.clients.items()):
            if at < limit:
                writer.close()


def _reason(status: int) -> bytes:
    phrase = REASONS.get(status)
    if phrase is None:
        try:
            phrase = REASONS[status] = HTTPStatus(status).phrase.encode()
        except ValueError:
            phrase = b"Unknown"
    return phrase


def _send(client: asyncio.StreamWriter, data: bytes) -> None:
    """Write to the client, or raise _ClientGone when it has hung up (uvloop would raise)."""
    if client.transport.is_closing():
        raise _ClientGone
    client.write(data)


def _simple(
    w: asyncio.StreamWriter, status: int, body: bytes, *, keep: bool, ctype: bytes = b"text/plain"
) -> None:
    if w.transport.is_closing():  # the client hung up: nobody to answer
        return
    w.write(
        b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\nconnection: %s\r\n\r\n%s"
        % (status, _reason(status), ctype, len(body), b"keep-alive" if keep else b"close", body)
    )


def _add_cookie(headers: list[tuple[bytes, bytes]], pair: bytes) -> None:
    for i, (key, value) in enumerate(headers):
        if key == b"cookie":
            headers[i] = (key, value + b"; " + pair)
            return
    headers.append((b"cookie", pair))


def _cookie(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == b"cookie":
            for part in value.split(b";"):
                k, _, v = part.strip().partition(b"=")
                if k == name and v:
                    return v.decode("latin-1")[:64]
    return None


async def serve_front(front: Front, host: str, port: int, drain_s: float = 10.0) -> None:
    """Serve until SIGTERM/SIGINT, then drain."""
    server = await asyncio.start_server(front.connection, host, port, backlog=2048)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    front.checker.start()

    async def sweeper() -> None:
        ticks = 0
        while True:
            await asyncio.sleep(0.5)
            front.log.flush()  # the access log reaches its file within half a second
            front.sweep()
            ticks += 1
            if ticks % 10 == 0:
                front.sweep_idle()

    sweeping = asyncio.create_task(sweeper())
    bound = server.sockets[0].getsockname()[1]  # the port given, or the one port 0 chose
    print(f"front balancer on http://{host}:{bound} over {', '.join(front.backends)}", flush=True)
    try:
        await stop.wait()
    finally:
        front.draining = True
        sweeping.cancel()
        server.close()
        deadline = time.monotonic() + drain_s
        while front.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for w in list(front.clients):
            w.close()
        for conns in front.idle.values():
            for _, w, _ in conns:
                w.close()
        front.checker.stop()
        front.log.flush()


def run_front(backends: Sequence[str], host: str, port: int) -> None:
    """Run the front balancer on uvloop."""
    import uvloop

    front = Front(backends)
    uvloop.run(serve_front(front, host, port))
