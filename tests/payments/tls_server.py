"""A loopback HTTPS server with a self-signed certificate, for the transports' tests.

It answers every request with a small JSON body, counts the TCP connections it
accepted (so a test can see connection reuse), and can be told to misbehave:
close a connection without answering, or answer late.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from commercekit.payments import HttpRequest, HttpResponse

App = Callable[[HttpRequest], HttpResponse]


@attrs.frozen
class Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, as PEM files in *folder*."""

    cert_file: Path
    key_file: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (and only it)."""
        return ssl.create_default_context(cafile=str(self.cert_file))


def self_signed(folder: Path) -> Certificate:
    """Make a P-256 key and a certificate for 127.0.0.1 valid for a day, written to *folder*."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


@attrs.define
class Behaviour:
    """What the server does next: answer, close without answering, or answer after a delay."""

    drop: bool = False
    delay_s: float = 0.0
    app: App | None = None  # answers requests when set (FakeStripe, for instance)
    connections: int = 0
    closed: int = 0  # connections the client closed (or that ended)
    requests: int = 0
    lock: threading.Lock = attrs.field(factory=threading.Lock)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that clients can reuse connections
    disable_nagle_algorithm = True  # no 40 ms stalls from Nagle meeting delayed ACKs
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.behaviour.lock:
            self.server.behaviour.connections += 1

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.behaviour.lock:
                self.server.behaviour.closed += 1

    def _serve(self) -> None:
        behaviour = self.server.behaviour
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with behaviour.lock:
            behaviour.requests += 1
        if behaviour.drop:
            self.close_connection = True
            return
        if behaviour.delay_s:
            time.sleep(behaviour.delay_s)
        if behaviour.app is not None:
            request = HttpRequest(
                self.command, f"https://127.0.0.1{self.path}", dict(self.headers.items()), body
            )
            response = behaviour.app(request)
            status, headers, answer = response.status, dict(response.headers), response.body
        else:
            status, headers = 200, {"Content-Type": "application/json"}
            answer = b'{"ok": true, "read": %d}' % len(body)
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour


@contextmanager
def tls_server(app: App | None = None) -> Iterator[tuple[str, Certificate, Behaviour]]:
    """Serve HTTPS on 127.0.0.1 (a free port); yield its base URL, certificate and behaviour."""
    with tempfile.TemporaryDirectory() as folder:
        certificate = self_signed(Path(folder))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert_file, certificate.key_file)
        server = _Server(("127.0.0.1", 0), _Handler, bind_and_activate=True)
        server.behaviour = Behaviour(app=app)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        try:
            yield f"https://127.0.0.1:{server.server_address[1]}", certificate, server.behaviour
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
