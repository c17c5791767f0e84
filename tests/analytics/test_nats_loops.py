"""JetStreamLog and event loops: its NATS connection lives on the log's own loop thread.

Against the local NATS (JetStream) on 127.0.0.1:4222. The log's blocking
API is called from sync code and from inside consecutive ``asyncio.run()``
calls alike (the connection is never the caller's loop's), and a log
dropped without ``close()`` ends its thread and its connection instead of
keeping them for the life of the process.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
import uuid
import warnings

import pytest

from commercekit.analytics import JetStreamLog, LogRecord
from tests.conftest import missing_service

pytestmark = pytest.mark.integration

URL = "nats://127.0.0.1:4222"


@pytest.fixture(autouse=True)
def _nats() -> None:
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=0.5).close()
    except OSError:
        missing_service("NATS is not reachable on 127.0.0.1:4222")


def _threads(stream: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == f"commercekit-nats-{stream}"]


def test_it_serves_consecutive_event_loops_and_sync_code() -> None:
    stream = f"LOOPS{uuid.uuid4().hex[:8]}"
    log = JetStreamLog(URL, stream=stream)
    try:

        async def round_trip(event_id: str) -> list[str]:
            log.publish([LogRecord(event_id, b"{}")])  # blocking: the log's own loop does it
            got = log.consume(10, 1.0)
            log.acknowledge(got)
            return [d.event_id for d in got]

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert asyncio.run(round_trip("e1")) == ["e1"]
            assert asyncio.run(round_trip("e2")) == ["e2"]
            log.publish([LogRecord("e3", b"{}")])
            assert [d.event_id for d in log.consume(10, 1.0)] == ["e3"]
        assert [str(w.message) for w in caught] == []
    finally:
        log.delete_stream()
        log.close()
    assert _threads(stream) == []


def test_a_log_dropped_without_close_ends_its_thread_and_connection() -> None:
    stream = f"LOOPS{uuid.uuid4().hex[:8]}"
    logs = [JetStreamLog(URL, stream=stream)]
    logs[0].publish([LogRecord("e1", b"{}")])
    nc = logs[0]._nc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logs.clear()
        gc.collect()
        deadline = time.monotonic() + 10
        while _threads(stream) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert _threads(stream) == []  # was kept running for the life of the process
    assert nc.is_closed
    assert [str(w.message) for w in caught] == []
    cleanup = JetStreamLog(URL, stream=stream)
    cleanup.delete_stream()
    cleanup.close()
