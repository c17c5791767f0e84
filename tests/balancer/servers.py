"""Real loopback servers for the probe and checker tests: TCP listeners and an HTTP server."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def tcp_listener() -> Iterator[str]:
    """A listening TCP socket on 127.0.0.1; yields its ``"host:port"``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"127.0.0.1:{server.getsockname()[1]}"


def closed_port() -> str:
    """A ``"host:port"`` on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    statuses: dict[str, int]

    def do_GET(self) -> None:  # the http.server naming convention
        status = self.server.statuses.get(self.path, 404)  # type: ignore[attr-defined]
        self.send_response(status)
        if status in (301, 302):
            self.send_header("Location", "/healthz")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def http_server(statuses: dict[str, int]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering each path with ``statuses[path]`` (else 404).

    Yields its ``"host:port"``; change *statuses* while it runs to change the answers.
    """
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.statuses = statuses  # type: ignore[attr-defined]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
