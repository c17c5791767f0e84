"""A real Prometheus server scrapes a small app's commercekit metrics and loads the rules."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from commercekit.analytics import (
    AnalyticsConsumer,
    AnalyticsStore,
    JsonLinesLog,
    LogRecord,
    product_viewed,
    rules_file,
)
from commercekit.metrics import PrometheusMetrics
from commercekit.money import Money
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine
from tests.conftest import missing_service
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_prometheus_scrapes_commercekit_series(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        missing_service("prometheus is not installed (Debian package prometheus)")
    import prometheus_client

    metrics = PrometheusMetrics()
    log = JsonLinesLog(tmp_path / "events.jsonl")
    events = [
        product_viewed("tee", Money.of("20.00", "EUR"), customer_id=f"c{i}") for i in range(7)
    ]
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in events])
    store = AnalyticsStore(
        Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db"))))
    )
    store.create()
    AnalyticsConsumer(log, store, metrics=metrics, poll_timeout_s=0).run(idle_exit_s=0)

    app_port, prom_port = free_port(), free_port()
    server, thread = prometheus_client.start_http_server(
        app_port, addr="127.0.0.1", registry=metrics.registry
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {rules_file()}\n"
        "scrape_configs:\n  - job_name: shop\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{app_port}']\n"
    )
    proc = subprocess.Popen(
        [
            binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{prom_port}"
    try:
        query = urllib.parse.quote("commercekit_analytics_events_consumed_total")
        deadline, result = time.monotonic() + 60, []
        while time.monotonic() < deadline and not result:
            assert proc.poll() is None, "prometheus exited"
            with contextlib.suppress(OSError):  # not listening yet
                result = _get(f"{base}/api/v1/query?query={query}")["data"]["result"]
            time.sleep(0.5)
        assert result, "no commercekit series reached Prometheus in 60 s"
        assert result[0]["metric"]["log"] == "default"
        assert float(result[0]["value"][1]) == 7
        groups = _get(f"{base}/api/v1/rules")["data"]["groups"]
        assert {g["name"] for g in groups} >= {
            "commercekit-analytics",
            "commercekit-slo-origin-errors",
        }
    finally:
        proc.terminate()
        proc.wait(20)
        server.shutdown()
        server.server_close()
        thread.join(5)
