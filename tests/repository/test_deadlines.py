"""Deadlines: the statement watchdog, driver timeouts, and probes that never hold up a read."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from commercekit.errors import ConfigurationError
from commercekit.repository import (
    Database,
    Node,
    ReadSettings,
    ReplicaStatus,
    ReplicatedTopology,
    engine_from_url,
    sqlite_engine,
)
from commercekit.repository._engines._deadlines import Watchdog, _drop_socket, connect_args_for
from commercekit.repository._errors import ErrorKind, classify
from tests.conftest import missing_service

from .fakes import FakePositions, replicate
from .models import Base, Customer, customer


def test_the_watchdog_fires_what_is_due_and_nothing_disarmed() -> None:
    dog = Watchdog(idle_s=0.2)
    fired: list[str] = []
    late = dog.arm(0.05, lambda: fired.append("late"))
    kept = dog.arm(0.05, lambda: fired.append("disarmed"))
    assert dog.disarm(kept)
    deadline = time.monotonic() + 5
    while not fired and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fired == ["late"]
    assert not dog.disarm(late)  # it had fired
    time.sleep(0.1)
    assert fired == ["late"]


def test_the_watchdog_thread_ends_when_idle_and_comes_back() -> None:
    dog = Watchdog(idle_s=0.1)
    dog.disarm(dog.arm(0.3, lambda: None))  # it may sleep until this alarm was due
    assert dog.running
    deadline = time.monotonic() + 5
    while dog.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not dog.running  # nothing left behind
    fired = threading.Event()
    dog.arm(0.01, fired.set)
    assert fired.wait(5)


def test_many_disarmed_alarms_are_compacted() -> None:
    dog = Watchdog(idle_s=0.1)
    for _ in range(5000):
        dog.disarm(dog.arm(60.0, lambda: None))
    assert len(dog._heap) < 2100


def test_dropping_a_socket_wakes_a_reader_blocked_on_a_silent_server() -> None:
    """The watchdog's action on a real loopback connection whose server never answers."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        try:
            got: list[bytes] = []
            reader = threading.Thread(target=lambda: got.append(client.recv(1)))
            reader.start()
            time.sleep(0.1)
            assert reader.is_alive()  # blocked: the server says nothing
            started = time.monotonic()
            _drop_socket(client.fileno())
            reader.join(5)
            assert not reader.is_alive()
            assert time.monotonic() - started < 1.0
            assert got == [b""]
        finally:
            client.close()
            peer.close()


def test_driver_connect_arguments_carry_the_deadlines() -> None:
    pg = connect_args_for("psycopg", statement_timeout_s=1.5, connect_timeout_s=2.0)
    assert pg["connect_timeout"] == 2
    assert pg["tcp_user_timeout"] == 1500
    assert pg["keepalives"] == 1
    assert "statement_timeout=1500" in pg["options"]
    my = connect_args_for("pymysql", statement_timeout_s=1.5, connect_timeout_s=3.0)
    assert (my["read_timeout"], my["write_timeout"], my["connect_timeout"]) == (1.5, 1.5, 3)
    assert connect_args_for("psycopg", statement_timeout_s=None, connect_timeout_s=3.0) == {
        "connect_timeout": 3
    }


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "1"])
def test_a_statement_timeout_must_be_a_positive_number(bad: object) -> None:
    pytest.importorskip("pymysql")
    with pytest.raises(ConfigurationError, match="statement_timeout_s"):
        engine_from_url("mysql://root@127.0.0.1:1/x", statement_timeout_s=bad)  # type: ignore[arg-type]


def test_a_psycopg_connect_timeout_is_a_lost_node() -> None:
    errors = pytest.importorskip("psycopg.errors")
    assert classify(errors.ConnectionTimeout("connection timeout expired")) is ErrorKind.DISCONNECT


class _HangingProbe(FakePositions):
    """Replica ``slow``'s status query hangs until released (a replica that stopped answering)."""

    def __init__(self, names: dict[str, str]) -> None:
        super().__init__(names)
        self.release = threading.Event()
        self.entered = threading.Event()

    def status(self, connection: Connection) -> ReplicaStatus:
        if self._name(connection) == "slow":
            self.entered.set()
            self.release.wait(30)
        return super().status(connection)


@pytest.fixture
def hanging(tmp_path: Path) -> Iterator[tuple[Database, _HangingProbe]]:
    primary = sqlite_engine(tmp_path / "p.db")
    replicas = [Node(n, sqlite_engine(tmp_path / f"{n}.db")) for n in ("fast", "slow")]
    for engine in (primary, *(r.engine for r in replicas)):
        Base.metadata.create_all(engine)
    source = _HangingProbe({str(r.engine.url.database): r.name for r in replicas})
    topology = ReplicatedTopology(Node("primary", primary), replicas)
    db = Database(topology, reads=ReadSettings(probe_interval_s=0.05), position_source=source)
    with db.unit_of_work() as uow:
        uow.repository(Customer).add(customer(1))
    for r in replicas:
        replicate(primary, r.engine)
    yield db, source
    source.release.set()
    db.close()
    topology.dispose()


def test_a_probe_that_hangs_never_holds_up_a_read(hanging: tuple[Database, _HangingProbe]) -> None:
    db, source = hanging
    db.repository(Customer).require(1)  # starts the first probe, on its own thread
    assert source.entered.wait(5)
    worst = 0.0
    for _ in range(50):
        started = time.monotonic()
        assert db.repository(Customer).require(1).id == 1
        worst = max(worst, time.monotonic() - started)
        time.sleep(0.002)
    assert worst < 0.5  # the probe is still hung
    assert sum(t.name.startswith("commercekit-probe") for t in threading.enumerate()) == 1
    source.release.set()
    db.close()
    assert not any(t.name.startswith("commercekit-probe") for t in threading.enumerate())


def test_a_token_wait_must_fit_in_the_replicas_statement_deadline() -> None:
    pytest.importorskip("pymysql")
    url = "mysql://root@127.0.0.1:1/x"  # never connected to
    topology = ReplicatedTopology.from_urls(url, [url], statement_timeout_s=1.0)
    try:
        with pytest.raises(ConfigurationError, match="token_wait_s"):
            Database(topology, reads=ReadSettings(token_wait_s=1.0))
        Database(topology, reads=ReadSettings(token_wait_s=0.5)).close()
    finally:
        topology.dispose()


def test_the_urls_libpq_options_are_kept_beside_the_server_side_limit() -> None:
    pytest.importorskip("psycopg")
    engine = engine_from_url(
        "postgresql://postgres@127.0.0.1:5432/postgres?options=-csearch_path%3Dck_shop",
        statement_timeout_s=2.0,
    )
    try:
        with engine.connect() as conn:
            search_path = conn.execute(text("show search_path")).scalar_one()
            limit = conn.execute(text("show statement_timeout")).scalar_one()
    except OperationalError:
        missing_service("the shared PostgreSQL on 127.0.0.1:5432 is not running")
    finally:
        engine.dispose()
    assert search_path == "ck_shop"
    assert limit == "2s"
