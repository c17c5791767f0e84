"""Real loopback servers for the probe and checker tests: TCP listeners and an HTTP server."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def tcp_listener() -> Iterator[str]:
    """A listening TCP socket on 127.0.0.1; yields its ``"host:port"``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"127.0.0.1:{server.getsockname()[1]}"


@contextmanager
def stalled_listener() -> Iterator[str]:
    """A TCP port on 127.0.0.1 whose accept queue is full: new connections never open.

    The listener's backlog holds one connection, which it never accepts; the
    kernel drops the handshakes that follow, so a connect waits for its timeout.
    Yields its ``"host:port"``.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        with socket.create_connection(server.getsockname(), timeout=5):  # fills the queue
            yield f"127.0.0.1:{server.getsockname()[1]}"


def closed_port() -> str:
    """A ``"host:port"`` on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    statuses: dict[str, int]

    def do_GET(self) -> None:  # the http.server naming convention
        required = self.server.authorization  # type: ignore[attr-defined]
        if required is not None and self.headers.get("Authorization") != required:
            status = 401
        else:
            status = self.server.statuses.get(self.path, 404)  # type: ignore[attr-defined]
        self.send_response(status)
        if status in (301, 302):
            self.send_header("Location", "/healthz")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    # The default backlog (5) drops the handshakes of a burst of probes while the
    # serving thread waits for the GIL; a dropped SYN is retried only after a second.
    request_queue_size = 128


@contextmanager
def http_server(statuses: dict[str, int], *, authorization: str | None = None) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering each path with ``statuses[path]`` (else 404).

    Yields its ``"host:port"``; change *statuses* while it runs to change the answers.
    With *authorization*, a request without exactly that ``Authorization`` header gets 401.
    """
    server = _Server(("127.0.0.1", 0), _Handler)
    server.statuses = statuses  # type: ignore[attr-defined]
    server.authorization = authorization  # type: ignore[attr-defined]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def slow_drip_server(*, every_s: float = 0.5, limit_s: float = 60.0) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers one byte every *every_s* seconds.

    Each connection is served on its own thread, which sends ``HTTP/1.1 200 OK``
    and endless headers a byte at a time, so a client whose timeout bounds each
    socket read, not the whole request, never times out. A connection is dropped
    after *limit_s* seconds or when the server stops. Yields its ``"host:port"``.
    """
    stop = threading.Event()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.05)
    threads: list[threading.Thread] = []
    payload = b"HTTP/1.1 200 OK\r\n" + b"X-Drip: " + b"." * 100_000

    def drip(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1.0)
            deadline = time.monotonic() + limit_s
            for byte in payload:
                if stop.wait(every_s) or time.monotonic() > deadline:
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=drip, args=(conn,), daemon=True)
            threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        acceptor.join(5)
        server.close()
        for thread in threads:
            thread.join(5)
