"""``python -m commercekit.analytics consume`` serves its own metrics for Prometheus to scrape."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from commercekit.analytics import JsonLinesLog, LogRecord, product_viewed
from commercekit.money import Money
from tests.integration.conftest import free_port


def test_the_consumer_process_serves_its_metrics(tmp_path: Path) -> None:
    """The shipped analytics alerts read these series, so the process must export them."""
    log = JsonLinesLog(tmp_path / "events.jsonl")
    views = [product_viewed("tee", Money.of("1.00", "EUR"), customer_id=f"c{i}") for i in range(4)]
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in views])
    log.publish([LogRecord("bad-1", b"not an event")])
    port = free_port()
    cmd = [
        sys.executable, "-m", "commercekit.analytics", "consume",
        "--log", f"jsonl://{tmp_path / 'events.jsonl'}", "--db", f"sqlite:///{tmp_path / 'a.db'}",
        "--consumer", "analytics-1", "--metrics-port", str(port),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline, text = time.monotonic() + 60, ""
        want = 'commercekit_analytics_events_consumed_total{log="analytics-1"} 4.0'
        while time.monotonic() < deadline and want not in text:
            assert proc.poll() is None, proc.communicate()
            url = f"http://127.0.0.1:{port}/metrics"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as r:
                text = r.read().decode()  # OSError: not listening yet
            time.sleep(0.2)
        assert want in text
        assert 'commercekit_analytics_dead_letters_total{log="analytics-1"} 1.0' in text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert b'"applied": 4' in out


def test_a_metrics_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable, "-m", "commercekit.analytics", "consume",
                "--log", f"jsonl://{tmp_path / 'e.jsonl'}",
                "--db", f"sqlite:///{tmp_path / 'a.db'}",
                "--metrics-port", str(port), "--idle-exit-s", "0",
            ],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"metrics port {port}" in result.stderr
