"""The conformance harness: each case gets its own edge behind the real proxy, over loopback.

One threaded loopback origin serves every case; a case registers the answers
for its own paths (under ``/<case name>/``). Its edge (an :class:`EdgeCache`
with a :class:`ManualClock`, so that time passes without sleeping) sits behind
``serve(ProxyHandler(edge))`` on a port of its own, and the case speaks HTTP
to it with httpx. A case returns what it observed; in *noisy* mode every
request it sends goes with an unsafe request to an unrelated URL of the same
edge, which must change nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import traceback
from collections.abc import Awaitable, Callable
from http.server import ThreadingHTTPServer
from typing import Any

import attrs
import httpx

from commercekit.cdn import EdgeCache, HttpOrigin, ManualClock, MemoryStore, ProxyHandler, serve
from commercekit.cdn._message._dates import format_http_date
from commercekit.metrics import InMemoryMetrics
from tests.cdn._loopback import QuietHandler, Served


@attrs.frozen
class Seen:
    """A request as the origin saw it."""

    method: str
    path: str
    headers: dict[str, str]


Answer = tuple[int, list[tuple[str, str]], bytes]
Route = Callable[[Seen], Answer]


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # socketserver's 5 drops SYNs when 25 cases connect at once


class SharedOrigin(Served):
    """A loopback origin answering each path with the route its case registered."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[Route, ManualClock]] = {}
        self.hits: dict[str, int] = {}
        self.gates: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        outer = self

        class Handler(QuietHandler):
            wbufsize = 64 * 1024  # headers and body in one write (no delayed-ACK stall)

            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                seen = Seen(self.command, path, {k.lower(): v for k, v in self.headers.items()})
                with outer._lock:
                    outer.hits[path] = outer.hits.get(path, 0) + 1
                gate = outer.gates.get(path)
                if gate is not None:
                    gate.wait(30)
                found = outer.routes.get(path)
                if found is None:
                    status, headers, body = 200, [("cache-control", "no-store")], b"noise"
                    clock = None
                else:
                    route, clock = found
                    status, headers, body = route(seen)
                self.send_response_only(status)
                names = {k.lower() for k, _ in headers}
                if "date" not in names and clock is not None:
                    self.send_header("date", format_http_date(clock()))
                for k, v in headers:
                    self.send_header(k, v)
                if status not in (204, 304):
                    self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD" and status not in (204, 304):
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _any

        self._serve(Handler, _Server)


@attrs.frozen
class Got:
    """What a client got: status, body, the edge's outcome (from ``Cache-Status``), headers."""

    status: int
    body: bytes
    outcome: str
    headers: dict[str, str]

    def obs(self) -> tuple[int, bytes, str]:
        """The part compared between runs."""
        return (self.status, self.body, self.outcome)


def outcome_of(cache_status: str | None) -> str:
    """``hit``, ``miss``, ``revalidated``, ``stale`` or ``pass``, from ``Cache-Status``."""
    if not cache_status:
        return "pass"
    if "detail=" in cache_status:
        return "stale"
    if "; hit" in cache_status:
        return "hit"
    if "fwd=stale" in cache_status:
        return "revalidated"
    return "miss"


_noise = itertools.count()
_runs = itertools.count()


class Case:
    """One conformance case's edge, proxy, client and clock."""

    def __init__(self, name: str, origin: SharedOrigin, *, noisy: bool) -> None:
        self.name = name
        self.prefix = f"/{name}-{next(_runs)}"  # fresh paths (and origin counts) every run
        self.origin = origin
        self.noisy = noisy
        self.clock = ManualClock()
        self.metrics = InMemoryMetrics()
        # verify=False: no CA bundle load per case; the timeout covers a gated (held) answer
        self._origin_client = httpx.AsyncClient(verify=False, timeout=60)
        self.edge = EdgeCache(
            HttpOrigin(origin.url, client=self._origin_client, timeout_s=60),
            MemoryStore(4 * 2**20, clock=self.clock),
            clock=self.clock,
            metrics=self.metrics,
            name="edge",
            origin_timeout_s=60,  # a loaded machine must not turn a gated answer into a 504
        )
        self._server: asyncio.Server | None = None
        self.client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Case:
        self._server = await serve(ProxyHandler(self.edge), port=0)
        port = self._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.client = httpx.AsyncClient(base_url=self.base, timeout=30, verify=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.client is not None
        assert self._server is not None
        await self.client.aclose()
        self._server.close()
        await self._server.wait_closed()
        await self.edge.aclose()
        await self._origin_client.aclose()
        for path in [p for p in self.origin.routes if p.startswith(self.prefix + "/")]:
            del self.origin.routes[path]

    def route(self, path: str, answer: Route) -> str:
        """Serve *answer* at this case's *path*; return the full path."""
        full = self.prefix + path
        self.origin.routes[full] = (answer, self.clock)
        return full

    def fixed(self, path: str, headers: list[tuple[str, str]], body: bytes = b"v1") -> str:
        """Serve one fixed answer at *path*."""
        return self.route(path, lambda seen: (200, headers, body))

    def hits(self, path: str) -> int:
        """How many requests the origin had for this case's *path*."""
        return self.origin.hits.get(self.prefix + path, 0)

    async def send(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Got:
        """Send one request through the proxy (in noisy mode, beside an unrelated POST)."""
        assert self.client is not None
        request = self.client.request(method, self.prefix + path, headers=headers, content=body)
        if self.noisy:
            noise = self.client.post(f"{self.prefix}/noise/{next(_noise)}", content=b"{}")
            response, _ = await asyncio.gather(request, noise)
        else:
            response = await request
        return Got(
            response.status_code,
            response.content,
            outcome_of(response.headers.get("cache-status")),
            {k.lower(): v for k, v in response.headers.items()},
        )

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Got:
        """GET *path*."""
        return await self.send("GET", path, headers)

    async def until(self, check: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Wait (bounded) for *check* to hold: a background refresh, coalesced waiters."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self.name}: condition not met within {timeout_s} s")
            await asyncio.sleep(0.005)


CaseFn = Callable[[Case], Awaitable[list[Any]]]
CASES: dict[str, tuple[str, CaseFn]] = {}


def case(rule: str) -> Callable[[CaseFn], CaseFn]:
    """Register a conformance case for *rule* (``RFC 9111 3``...)."""

    def register(fn: CaseFn) -> CaseFn:
        CASES[fn.__name__.removeprefix("case_")] = (rule, fn)
        return fn

    return register


async def _settle() -> None:
    """Let the proxy's connection handlers see their clients go (bounded)."""
    me = asyncio.current_task()
    for _ in range(500):
        if all(t is me or t.done() for t in asyncio.all_tasks()):
            return
        await asyncio.sleep(0.002)


async def run_case(
    name: str, origin: SharedOrigin, *, noisy: bool, settle: bool = True
) -> list[Any]:
    """Run one case; an assertion it fails becomes part of its result."""
    _, fn = CASES[name]
    try:
        async with Case(name, origin, noisy=noisy) as c:
            try:
                return await fn(c)
            except AssertionError as exc:
                where = traceback.extract_tb(exc.__traceback__)[-1]
                return [f"failed: line {where.lineno}: {where.line} {exc}"]
    finally:
        if settle:
            await _settle()


async def run_all(origin: SharedOrigin, *, width: int, noisy: bool) -> dict[str, list[Any]]:
    """Run every case, *width* at a time; return each one's observations by name."""
    names = sorted(CASES)
    results: dict[str, list[Any]] = {}
    semaphore = asyncio.Semaphore(width)

    async def one(name: str) -> None:
        async with semaphore:
            results[name] = await run_case(name, origin, noisy=noisy, settle=False)

    await asyncio.gather(*(one(n) for n in names))
    await _settle()
    return results
