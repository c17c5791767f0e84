"""``serve``: the caching proxy's HTTP/1.1 server (``httptools``; ``uvloop`` when installed).

One listening socket per process (``reuse_port`` lets several worker
processes share a port: see ``_workers``), each connection a
:class:`~commercekit.cdn._servers._http1.Connection`. Fresh cached hits go through
:class:`~commercekit.cdn._servers._hits.HitPath` without parsing stored headers.
:meth:`ProxyServer.drain` stops accepting, lets each connection finish the
response it is writing and closes it, then closes the rest after a deadline.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from typing import IO

from ._hits import HitPath
from ._http1 import AccessWriter, Connection, ConnectionOptions, Responder, ServerState
from ._proxy import ProxyHandler

__all__ = ["AccessLog", "ProxyServer", "serve"]

DEFAULT_BACKLOG = 4096


class AccessLog:
    """Writes one line per response to *stream*, in the common or combined log format.

    Lines are buffered and written at most every *flush_s* seconds (and at
    :meth:`flush`), so logging costs one write per batch, not per request.
    """

    def __init__(
        self, stream: IO[str] | None = None, *, combined: bool = True, flush_s: float = 0.5
    ) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._combined = combined
        self._flush_s = flush_s
        self._lines: list[str] = []
        self._stamp_second = -1
        self._stamp = ""
        self._handle: asyncio.TimerHandle | None = None

    def __call__(
        self,
        client: str,
        method: bytes,
        target: bytes,
        version: str,
        status: int,
        body_bytes: int,
        referer: bytes,
        agent: bytes,
    ) -> None:
        """Record one response."""
        now = int(time.time())
        if now != self._stamp_second:
            self._stamp_second = now
            self._stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(now))
        line = (
            f'{client} - - [{self._stamp}] "{_text(method)} {_text(target)} HTTP/{version}" '
            f"{status} {body_bytes if body_bytes else '-'}"
        )
        if self._combined:
            line += f' "{_text(referer) or "-"}" "{_text(agent) or "-"}"'
        self._lines.append(line)
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self._flush_s, self.flush)

    def flush(self) -> None:
        """Write the buffered lines now."""
        self._handle = None
        if self._lines:
            lines, self._lines = self._lines, []
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()


def _text(value: bytes) -> str:
    return value.decode("latin-1").replace("\\", "\\\\").replace('"', '\\"')[:2000]


class ProxyServer:
    """A running listener: ``sockets``, ``close()``, ``wait_closed()``, and ``drain()``."""

    def __init__(self, server: asyncio.Server, state: ServerState) -> None:
        self._server = server
        self._state = state

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (``sockets[0].getsockname()`` has the port)."""
        return tuple(self._server.sockets)

    @property
    def connections(self) -> int:
        """Client connections open now."""
        return len(self._state.connections)

    def close(self) -> None:
        """Stop accepting connections (open ones stay: see :meth:`drain`)."""
        self._server.close()

    async def wait_closed(self) -> None:
        """Wait until the listener is closed."""
        self._server.close()
        await self._drain_wait(0.0)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Stop accepting, finish the responses in progress, close every connection.

        Connections still busy after *timeout_s* are aborted.
        """
        self._server.close()
        await self._drain_wait(timeout_s)

    async def _drain_wait(self, timeout_s: float) -> None:
        self._state.drain()
        deadline = time.monotonic() + timeout_s
        while self._state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for connection in list(self._state.connections):
            connection.abort()
        self._state.stop()
        if self._state.access is not None and isinstance(self._state.access, AccessLog):
            self._state.access.flush()


async def serve(
    handler: Responder,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    max_header_bytes: int = 64 * 1024,
    header_timeout_s: float = 10.0,
    idle_timeout_s: float = 60.0,
    backlog: int = DEFAULT_BACKLOG,
    reuse_port: bool = False,
    sock: socket.socket | None = None,
    access_log: AccessWriter | None = None,
) -> ProxyServer:
    """Start serving *handler* on *host*:*port* and return the running :class:`ProxyServer`.

    ``port=0`` picks a free port (read it from ``server.sockets[0].getsockname()``).
    *backlog* is the listen queue (the kernel caps it at ``net.core.somaxconn``);
    *header_timeout_s* bounds the arrival of each request's header section,
    *idle_timeout_s* an idle keep-alive connection and a stalled body. Pass
    *sock* to serve an already bound socket, *reuse_port* to share the port
    with other processes. Stop with ``await server.drain()`` (or ``close()``
    and ``wait_closed()``).
    """
    options = ConnectionOptions(
        header_timeout_s=header_timeout_s,
        idle_timeout_s=idle_timeout_s,
        max_header_bytes=max_header_bytes,
    )
    hits = HitPath(handler) if isinstance(handler, ProxyHandler) else None
    state = ServerState(handler, options, hits=hits, access=access_log)
    loop = asyncio.get_running_loop()
    if sock is None:
        sock = bind(host, port, backlog=backlog, reuse_port=reuse_port)
    server = await loop.create_server(lambda: Connection(state), sock=sock, backlog=backlog)
    return ProxyServer(server, state)


def bind(
    host: str, port: int, *, backlog: int, reuse_port: bool, listen: bool = True
) -> socket.socket:
    """A TCP socket bound to *host*:*port* (``SO_REUSEPORT`` when *reuse_port*), listening."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        if listen:
            sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
