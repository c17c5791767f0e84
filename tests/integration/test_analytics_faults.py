"""Exactly once under faults, through Redis Streams and through NATS JetStream.

A generated shop history goes from the outbox through relay processes that
are SIGKILLed between publishing and marking sent (each planned crash is a
relay killing itself right after a publish; the next relay takes the batch
over when its lease runs out and publishes the same ids again), into a
consumer process that is SIGKILLed and restarted five times at random
points, while the broker connection is dropped (Redis: ``CLIENT KILL`` of the
consumer's own connection; NATS: a restart of the test's own nats-server).
The stored aggregates must equal DuckDB's reference from the raw history.

The default run uses 3,000 events; set COMMERCEKIT_LARGE=1 for the marked
200,000-event run.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from commercekit.analytics import (
    AnalyticsStore,
    EventLog,
    LogRecord,
    Reports,
    record,
)
from commercekit.repository import Database, Node, Outbox, ReplicatedTopology, sqlite_engine
from tests.analytics._history import (
    FUNNEL,
    FUNNEL_ARG,
    assert_matches,
    generate,
    malformed_bodies,
    reference,
)
from tests.conftest import missing_service
from tests.integration.conftest import free_port

LARGE = os.environ.get("COMMERCEKIT_LARGE") == "1"
# The full-size run (200,000 events and DuckDB's reference) outlasts the default 300 s.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600 if LARGE else 300)]


class NatsServer:
    """A nats-server with JetStream on a free loopback port, in a temp folder."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(binary).exists():
            missing_service("nats-server is not installed (Debian package nats-server)")
        self.binary, self.folder, self.port = binary, folder, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        import socket

        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start in 15 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


def _redis_client() -> Any:
    try:
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1)
        client.ping()
        return client
    except Exception as exc:
        missing_service(f"Redis at 127.0.0.1:6379 is not reachable: {exc}")


def _processed(db: Database, store: AnalyticsStore) -> int:
    with db.unit_of_work(read_only=True) as uow:
        return int(
            uow.session.scalar(select(func.count()).select_from(store.schema.processed)) or 0
        )


RELAY = Path(__file__).resolve().parent.parent / "analytics" / "_relay_process.py"
RELAY_CRASHES = 3


def _relay(
    shop_db: Path, log_url: str, err_path: Path, stop: threading.Event, errors: list[Any]
) -> None:
    """Relay processes in turn: RELAY_CRASHES are SIGKILLed after a publish, the last drains."""
    try:
        for crash in range(RELAY_CRASHES + 1):
            cmd = [sys.executable, str(RELAY), str(shop_db), log_url]
            if crash < RELAY_CRASHES:
                cmd += ["--crash-after-publish", str(2 + crash)]
            with open(err_path, "ab") as err_file:
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_file)
            while proc.poll() is None:
                if stop.wait(0.2):
                    proc.kill()
                    proc.wait()
                    return
            want = -signal.SIGKILL if crash < RELAY_CRASHES else 0
            if proc.returncode != want:
                err = err_path.read_text(errors="replace")
                errors.append(f"relay {crash} exited {proc.returncode}, not {want}: {err}")
                return
    except BaseException as exc:  # pragma: no cover - reported by the test
        errors.append(exc)


def _run(
    tmp_path: Path,
    n_events: int,
    publisher: EventLog,
    log_url: str,
    relay_url: str,
    drop_connection: Any,
) -> None:
    rng = random.Random(n_events)
    events = generate(n_events, seed=11)
    shop = Database(ReplicatedTopology(Node("primary", sqlite_engine(tmp_path / "shop.db"))))
    outbox = Outbox()
    shop.create_all(outbox.metadata)
    for i in range(0, len(events), 500):
        with shop.unit_of_work() as uow:
            for e in events[i : i + 500]:
                record(uow, outbox, e)
    agg_path = tmp_path / "analytics.db"
    store = AnalyticsStore(
        Database(ReplicatedTopology(Node("primary", sqlite_engine(agg_path)))), funnels=[FUNNEL]
    )
    store.create()
    bad = malformed_bodies()
    publisher.publish([LogRecord(f"malformed-{i}", b) for i, b in enumerate(bad)])

    cmd = [
        sys.executable, "-m", "commercekit.analytics", "consume", "--log", log_url,
        "--db", f"sqlite:///{agg_path}", "--funnel", FUNNEL_ARG, "--consumer", "consumer-1",
        "--batch", "300",
    ]  # fmt: skip

    err_path = tmp_path / "consumer.err"

    def start() -> subprocess.Popen[bytes]:
        with open(err_path, "ab") as err:
            return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)

    stop, errors = threading.Event(), []
    relay = threading.Thread(
        target=_relay,
        args=(tmp_path / "shop.db", relay_url, tmp_path / "relay.err", stop, errors),
    )
    relay.start()
    proc = start()
    started = time.monotonic()
    try:
        for kill in range(5):
            time.sleep(rng.uniform(0.3, 1.2))
            if kill == 2:
                drop_connection()
                time.sleep(rng.uniform(0.3, 1.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            proc = start()
        bound_s = 240 + n_events / 100  # generous: the CI machine is shared
        relay.join(bound_s)
        assert not relay.is_alive(), f"the relay did not finish in {bound_s} s"
        assert not errors, errors
        want = len(events) + len(bad)
        deadline = time.monotonic() + bound_s
        while _processed(store.db, store) < want and time.monotonic() < deadline:
            assert proc.poll() is None, err_path.read_text()
            time.sleep(0.2)
        assert _processed(store.db, store) == want
        print(f"{len(events)} events relayed and applied in {time.monotonic() - started:.1f} s")
    finally:
        stop.set()
        relay.join(30)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    reports = Reports(store)
    assert_matches(reports, reference(events))
    parked = reports.dead_letters()
    assert sorted(p["event_id"] for p in parked) == [f"malformed-{i}" for i in range(len(bad))]
    assert all(p["reason"] for p in parked)


def _size() -> int:
    return 200_000 if LARGE else 3_000


def test_redis_streams_exactly_once_under_faults(tmp_path: Path) -> None:
    client = _redis_client()
    from commercekit.analytics import RedisStreamsLog

    stream, name = f"ck_faults_{uuid.uuid4().hex[:10]}", f"ck-consumer-{uuid.uuid4().hex[:8]}"
    url = f"redis://127.0.0.1:6379/0?stream={stream}&claim_idle_s=2&client_name={name}"
    publisher = RedisStreamsLog("redis://127.0.0.1:6379/0", stream=stream)

    def drop() -> None:
        for c in client.client_list():
            if c.get("name") == name:
                client.client_kill_filter(_id=c["id"])

    try:
        relay_url = f"redis://127.0.0.1:6379/0?stream={stream}"
        _run(tmp_path, _size(), publisher, url, relay_url, drop)
        assert client.xlen(stream) > _size()  # the crashed relays published some events twice
    finally:
        publisher.close()
        client.delete(stream)
        client.close()


def test_nats_jetstream_exactly_once_under_faults(tmp_path: Path, nats_server: NatsServer) -> None:
    from commercekit.analytics import JetStreamLog

    stream = f"ck_faults_{uuid.uuid4().hex[:10]}"
    base = f"nats://127.0.0.1:{nats_server.port}"
    publisher = JetStreamLog(base, stream=stream, timeout_s=3)

    def drop() -> None:
        nats_server.stop()
        time.sleep(0.5)
        nats_server.start()

    try:
        url = f"{base}?stream={stream}&ack_wait_s=3"
        _run(tmp_path, _size(), publisher, url, f"{base}?stream={stream}", drop)
    finally:
        publisher.close()
