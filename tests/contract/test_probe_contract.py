"""The contract every shipped HealthProbe keeps, against real servers on 127.0.0.1.

TcpProbe, HttpProbe and CallableProbe (here wrapping a TCP connect) pass the
same tests: healthy, refused and silent targets; many calls in a row and from
several threads; no socket left open; no secret in the repr. What each needs
to be wired to the targets is in its own fixture, so the tests are the same.

"Silent" is the strongest silence the probe can tell apart: a port whose
handshake never completes for the TCP probes, a server that accepts the
connection but never answers for the HTTP probe.
"""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import attrs
import pytest

from commercekit.balancer import CallableProbe, HealthProbe, HttpProbe, TcpProbe
from commercekit.balancer._checking._probes import host_port
from commercekit.errors import ConfigurationError
from tests.balancer.servers import closed_port, http_server, stalled_listener, tcp_listener

TIMEOUT_S = 0.25
MARGIN_S = 0.5
"""How much longer than its timeout a probe may take to give up on a silent target."""
SECRET = "s3cret-Pa55"


@attrs.frozen
class Subject:
    """One probe wired to its targets, as ``"host:port"`` node names."""

    probe: HealthProbe
    healthy: str
    refusing: str
    silent: str
    secret: str | None
    """A secret the probe was configured with, where it can carry one."""
    misconfigured: HealthProbe
    """The same kind of probe set up wrongly for node ``"web-1"`` (carrying the secret, if any)."""


@pytest.fixture
def healthy_server() -> Iterator[str]:
    """A server that accepts every connection and answers ``GET /healthz`` with 200."""
    with http_server({"/healthz": 200}) as node:
        yield node


@pytest.fixture
def tcp_subject(healthy_server: str) -> Iterator[Subject]:
    with stalled_listener() as silent:
        yield Subject(
            TcpProbe(), healthy_server, closed_port(), silent, None, misconfigured=TcpProbe()
        )


@pytest.fixture
def http_subject() -> Iterator[Subject]:
    authorization = "Basic " + base64.b64encode(f"monitor:{SECRET}".encode()).decode()
    probe = HttpProbe(url=f"http://monitor:{SECRET}@{{node}}/healthz")
    wrong = HttpProbe(url=f"ftp://monitor:{SECRET}@{{node}}/healthz")
    with (
        http_server({"/healthz": 200}, authorization=authorization) as healthy,
        tcp_listener() as silent,  # accepts (the kernel's backlog), never answers
    ):
        yield Subject(probe, healthy, closed_port(), silent, SECRET, misconfigured=wrong)


@pytest.fixture
def callable_subject(healthy_server: str) -> Iterator[Subject]:
    def connect(node: str) -> bool:
        # The function is not told the timeout: it brings its own, the contract's.
        with socket.create_connection(host_port(node), timeout=TIMEOUT_S):
            return True

    probe = CallableProbe(connect)
    with stalled_listener() as silent:
        yield Subject(probe, healthy_server, closed_port(), silent, None, misconfigured=probe)


@pytest.fixture(params=["tcp_subject", "http_subject", "callable_subject"])
def subject(request: pytest.FixtureRequest) -> Subject:
    wired: Subject = request.getfixturevalue(request.param)
    return wired


def check(subject: Subject, node: str) -> bool:
    return subject.probe(node, timeout_s=TIMEOUT_S)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_healthy_target_passes(subject: Subject) -> None:
    assert check(subject, subject.healthy) is True


def test_a_refusing_target_fails_without_raising(subject: Subject) -> None:
    assert check(subject, subject.refusing) is False


def test_a_silent_target_fails_within_the_timeout(subject: Subject) -> None:
    for _ in range(2):
        started = time.monotonic()
        assert check(subject, subject.silent) is False
        assert time.monotonic() - started < TIMEOUT_S + MARGIN_S


def test_a_probe_is_reusable(subject: Subject) -> None:
    for i in range(40):
        node = subject.healthy if i % 2 == 0 else subject.refusing
        assert check(subject, node) is (i % 2 == 0), f"call {i} to {node}"
    assert check(subject, subject.silent) is False
    assert check(subject, subject.healthy) is True  # a silent target leaves nothing behind


def test_a_probe_is_safe_to_call_from_several_threads(subject: Subject) -> None:
    nodes = [subject.healthy, subject.refusing] * 24 + [subject.silent] * 4
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda node: check(subject, node), nodes))
    assert results == [node == subject.healthy for node in nodes]
    assert time.monotonic() - started < 4 * TIMEOUT_S + 5 * MARGIN_S


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts fds in /proc (Linux)")
def test_a_probe_leaves_no_socket_open(subject: Subject) -> None:
    check(subject, subject.healthy)  # anything opened once (imports, caches) opens now
    before = open_fds()
    for i in range(60):
        check(subject, subject.healthy if i % 2 == 0 else subject.refusing)
    check(subject, subject.silent)
    # The loopback server closes its end of each connection on its own threads.
    deadline = time.monotonic() + 2.0
    while open_fds() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert open_fds() <= before


def test_the_repr_shows_no_secret(subject: Subject) -> None:
    for text in (repr(subject.probe), str(subject.probe)):
        assert type(subject.probe).__name__ in text
        if subject.secret is not None:
            assert subject.secret not in text


def test_a_misconfigured_probe_raises_a_configuration_error(subject: Subject) -> None:
    with pytest.raises(ConfigurationError) as info:
        subject.misconfigured("web-1", timeout_s=TIMEOUT_S)
    if subject.secret is not None:
        assert subject.secret not in str(info.value)
