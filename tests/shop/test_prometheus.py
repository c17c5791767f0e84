"""A real Prometheus scrapes the fleet with docs/deploy.md's jobs: every process is up."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from shop.fleet import Fleet

from tests.conftest import missing_service
from tests.shop._procs import ROOT, free_port

pytestmark = pytest.mark.integration


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?query={urllib.parse.quote(promql)}"
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        result: list[dict[str, Any]] = json.loads(response.read())["data"]["result"]
        return result


def test_prometheus_scrapes_every_process_with_the_documented_jobs(
    fleet: Fleet, tmp_path: Path
) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        missing_service("prometheus is not installed (Debian package prometheus)")
    apps = [f"127.0.0.1:{fleet.procs[n].port}" for n in fleet.app_names()]
    jobs = {
        "shop-front": [f"127.0.0.1:{fleet.front_port}"],
        "shop-app": apps,
        "shop-analytics": [f"127.0.0.1:{fleet.procs['analytics'].port}"],
        "shop-origin": [f"127.0.0.1:{fleet.procs['origin'].port}"],
        "shop-edge": [f"127.0.0.1:{fleet.edge_admin}"],
    }
    documented = (ROOT / "docs" / "deploy.md").read_text().partition("scrape_configs:")[2]
    assert set(re.findall(r"job_name: (\S+)", documented)) == set(jobs)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n"
        + "".join(
            f"  - job_name: {job}\n    static_configs: [{{targets: {json.dumps(targets)}}}]\n"
            for job, targets in jobs.items()
        )
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    up: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (len(up) < 6 or set(up.values()) != {1.0}):
            assert proc.poll() is None, "prometheus exited"
            with contextlib.suppress(OSError):  # not listening yet
                up = {r["metric"]["instance"]: float(r["value"][1]) for r in _query(base, "up")}
            time.sleep(0.5)
        assert len(up) == 6, up
        assert set(up.values()) == {1.0}, up  # every target scraped
        for series in (
            'shop_http_requests_total{job="shop-app"}',
            'shop_front_requests_total{job="shop-front"}',
            'commercekit_balancer_health_transitions_total{job="shop-front"}',
            'shop_http_requests_total{job="shop-origin"}',
            'shop_http_requests_total{job="shop-analytics"}',
            'commercekit_cdn_served_bytes_total{job="shop-edge"}',
        ):
            assert _query(base, series), f"{series} did not reach Prometheus"
    finally:
        proc.terminate()
        proc.wait(20)
