"""A loopback HTTP server for tests: records every request, answers with a plain function."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

import attrs


class QuietHandler(BaseHTTPRequestHandler):
    """An HTTP/1.1 request handler that logs nothing."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else a head and a body written apart wait for a delayed ACK

    def log_message(self, format: str, *args: object) -> None:
        pass


class Served:
    """A threaded server on a free 127.0.0.1 port: ``with`` starts it, leaving stops it."""

    url: str

    def _serve(
        self,
        handler: type[BaseHTTPRequestHandler],
        server: type[ThreadingHTTPServer] = ThreadingHTTPServer,
    ) -> None:
        self._server = server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@attrs.frozen
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Answer = tuple[int, dict[str, str], bytes]


class LoopbackServer(Served):
    """``with LoopbackServer(handler) as server:`` serves on ``server.url`` (127.0.0.1)."""

    def __init__(self, handler: Callable[[Seen], Answer]) -> None:
        self.seen: list[Seen] = []
        outer = self

        class Handler(QuietHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                outer.seen.append(seen)
                status, headers, payload = handler(seen)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PURGE = _any

        self._serve(Handler)


PATTERN = bytes(range(256)) * 256  # 64 KiB; body byte i is i % 256


def pattern_bytes(first: int, last: int) -> bytes:
    """Bytes *first* to *last* (inclusive) of a :class:`StreamingServer` body."""
    return bytes(i % 256 for i in range(first, last + 1))


class StreamingServer(Served):
    """Serves ``/<size>`` bodies of the pattern in 64 KiB writes without holding them.

    Query flags: ``chunked`` (no Content-Length), ``fail=<n>`` (close the
    connection after *n* bytes), ``slow`` (sleep 5 ms between writes).
    ``requests`` counts the requests served.
    """

    def __init__(self, cache_control: str = "public, max-age=600") -> None:
        self.requests = 0
        outer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                import time
                from urllib.parse import parse_qs, urlsplit

                outer.requests += 1
                parts = urlsplit(self.path)
                size = int(parts.path.strip("/"))
                query = parse_qs(parts.query, keep_blank_values=True)
                fail = int(query["fail"][0]) if "fail" in query else None
                chunked = "chunked" in query
                self.send_response(200)
                self.send_header("cache-control", cache_control)
                self.send_header("content-type", "video/mp4")
                self.send_header("etag", f'"{size}"')
                if chunked:
                    self.send_header("transfer-encoding", "chunked")
                else:
                    self.send_header("content-length", str(size))
                self.end_headers()
                sent = 0
                while sent < size:
                    piece = PATTERN[: min(len(PATTERN), size - sent)]
                    if fail is not None and sent + len(piece) > fail:
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    if chunked:
                        self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                    else:
                        self.wfile.write(piece)
                    sent += len(piece)
                    if "slow" in query:
                        time.sleep(0.005)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")

        self._serve(Handler)


@attrs.frozen
class Close:
    """A :class:`RawOrigin` answer: send *data*, then close the connection."""

    data: bytes
    hang: bool = False
    """Wait (for the server to stop) after sending *data*, before closing."""


class RawOrigin:
    """A loopback origin speaking raw bytes: ``answer(connection, nth, request)`` -> bytes or None.

    *request* is the head, the blank line and the body (``Content-Length`` of it).
    None closes the connection without answering, :class:`Close` closes it after the bytes;
    each connection is served by one thread.
    """

    def __init__(self, answer: Callable[[int, int, bytes], bytes | Close | None]) -> None:
        self._answer = answer
        self.stopped = threading.Event()
        """Set when the server stops: an answer that hangs waits on it, so it ends too."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.connections = 0
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        with conn:
            conn.settimeout(5)
            buffered = b""
            for nth in itertools.count(1):
                while b"\r\n\r\n" not in buffered:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buffered += data
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                length = _content_length(head)
                while len(buffered) < length:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buffered += data
                body, buffered = buffered[:length], buffered[length:]
                reply = self._answer(number, nth, head + b"\r\n\r\n" + body)
                if reply is None:
                    return
                if isinstance(reply, Close):
                    conn.sendall(reply.data)
                    if reply.hang:
                        self.stopped.wait(10)
                    return
                conn.sendall(reply)

    def __enter__(self) -> RawOrigin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self.stopped.set()
        self._thread.join(5)
        self._listener.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0
