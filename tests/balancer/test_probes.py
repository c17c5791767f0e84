"""The shipped probes against real loopback servers: TCP connect and HTTP status."""

from __future__ import annotations

import socket
import time

import pytest

from commercekit.balancer import CallableProbe, HttpProbe, TcpProbe
from commercekit.balancer._checking._probes import host_port
from commercekit.errors import ConfigurationError

from .servers import closed_port, http_server, slow_drip_server, stalled_listener, tcp_listener


def test_tcp_probe_passes_when_the_port_accepts() -> None:
    with tcp_listener() as node:
        assert TcpProbe()(node, timeout_s=1.0) is True


def test_tcp_probe_fails_when_the_port_refuses() -> None:
    assert TcpProbe()(closed_port(), timeout_s=1.0) is False


def test_tcp_probe_with_an_address_function() -> None:
    with tcp_listener() as address:
        host, port = host_port(address)
        probe = TcpProbe(address=lambda node: (host, port))
        assert probe("web-1", timeout_s=1.0) is True


@pytest.mark.parametrize(
    ("node", "expected"),
    [("127.0.0.1:80", ("127.0.0.1", 80)), ("[::1]:8080", ("::1", 8080)), ("db:5432", ("db", 5432))],
)
def test_host_port(node: str, expected: tuple[str, int]) -> None:
    assert host_port(node) == expected


@pytest.mark.parametrize("node", ["web-1", "host:", ":80", "host:http", "host:70000"])
def test_host_port_rejects_names_without_a_port(node: str) -> None:
    with pytest.raises(ConfigurationError, match="host:port"):
        host_port(node)


def test_http_probe_reads_the_status() -> None:
    statuses = {"/healthz": 200, "/sick": 503, "/moved": 302, "/teapot": 418}
    with http_server(statuses) as node:
        assert HttpProbe()(node, timeout_s=2.0) is True
        assert HttpProbe(url="http://{node}/sick")(node, timeout_s=2.0) is False
        assert HttpProbe(url="http://{node}/moved")(node, timeout_s=2.0) is True  # 3xx passes
        assert HttpProbe(url="http://{node}/teapot", expect={418})(node, timeout_s=2.0) is True
        assert HttpProbe(url="http://{node}/missing")(node, timeout_s=2.0) is False
        assert HttpProbe(url=lambda n: f"http://{n}/healthz?full=1")(node, timeout_s=2.0) is False
        statuses["/healthz"] = 500
        assert HttpProbe()(node, timeout_s=2.0) is False


def test_http_probe_fails_on_refused_and_silent_servers() -> None:
    assert HttpProbe()(closed_port(), timeout_s=1.0) is False
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        node = f"127.0.0.1:{silent.getsockname()[1]}"
        assert HttpProbe()(node, timeout_s=0.2) is False


def test_http_probe_url_must_be_http() -> None:
    with pytest.raises(ConfigurationError, match="http"):
        HttpProbe(url="ftp://{node}/")("x:1", timeout_s=1.0)
    assert HttpProbe(url="https://{node}/h").url_for("a:1") == "https://a:1/h"


def test_callable_probe() -> None:
    assert CallableProbe(lambda node: node == "ok")("ok", timeout_s=1.0) is True
    assert CallableProbe(lambda node: node == "ok")("no", timeout_s=1.0) is False


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("http://monitor:p@ss-w0rd@{node}/healthz", "ss-w0rd"),  # an @ in the password
        ("https://TOKEN-8f2a@{node}/healthz", "TOKEN-8f2a"),  # a bare token as user
        ("  http://monitor:hunter2@{node}/healthz", "hunter2"),  # leading spaces
    ],
)
def test_user_info_never_shows(url: str, secret: str) -> None:
    probe = HttpProbe(url)
    assert secret not in repr(probe)
    with pytest.raises(ConfigurationError) as info:
        HttpProbe(url.replace("{node}", "{node}{oops}")).url_for("web-1:80")
    assert secret not in str(info.value)


def test_http_probe_timeout_bounds_the_whole_check() -> None:
    # One byte every 0.5 s: no single read waits 1 s, but the check must end by then.
    with slow_drip_server(every_s=0.5) as node:
        started = time.monotonic()
        assert HttpProbe()(node, timeout_s=1.0) is False
        assert time.monotonic() - started < 1.3


def test_tcp_probe_timeout_bounds_the_whole_check() -> None:
    with stalled_listener() as node:
        started = time.monotonic()
        assert TcpProbe()(node, timeout_s=0.3) is False
        assert time.monotonic() - started < 0.6


def test_http_probe_reads_a_status_split_over_many_packets() -> None:
    with slow_drip_server(every_s=0.001) as node:
        # The status line arrives a byte at a time, well within the deadline.
        assert HttpProbe()(node, timeout_s=2.0) is True


@pytest.mark.parametrize(
    ("url", "method"),
    [
        ("http://{node}/a b", "GET"),
        ("http://{node}/caf\u00e9", "GET"),
        ("http://{node}/", "GET /x"),
    ],
)
def test_http_probe_refuses_requests_it_cannot_send(url: str, method: str) -> None:
    with pytest.raises(ConfigurationError):
        HttpProbe(url=url, method=method)("127.0.0.1:1", timeout_s=0.5)


def test_https_probe_handshake_ends_by_the_deadline() -> None:
    with socket.socket() as silent:  # accepts connections, never answers the TLS handshake
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        node = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        assert HttpProbe(url="https://{node}/healthz")(node, timeout_s=0.3) is False
        assert time.monotonic() - started < 0.6
    with slow_drip_server(every_s=0.05) as drip:  # answers plain HTTP, a byte at a time
        started = time.monotonic()
        assert HttpProbe(url="https://{node}/healthz")(drip, timeout_s=0.5) is False
        assert time.monotonic() - started < 0.8
