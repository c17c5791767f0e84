"""A real Prometheus scrapes the fleet with docs/deploy.md's jobs; the admin reads it.

Every process is up under the documented jobs, and with ``SHOP_PROMETHEUS_URL``
an app server's admin draws its live operations charts from PromQL over what
Prometheus scraped; a Prometheus stopped, or one that never answers, makes
the charts say so within the timeout (never a 500, never a hang).
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from shop.fleet import Fleet

from tests.shop._procs import ROOT, free_port, prom_query, prometheus, shop_env, shop_in_thread
from tests.shop.test_storefront import _admin

pytestmark = pytest.mark.integration


def fleet_jobs(fleet: Fleet) -> dict[str, list[str]]:
    """docs/deploy.md's scrape jobs, with the fleet's addresses."""
    return {
        "shop-front": [f"127.0.0.1:{fleet.front_port}"],
        "shop-app": [f"127.0.0.1:{fleet.procs[n].port}" for n in fleet.app_names()],
        "shop-analytics": [f"127.0.0.1:{fleet.procs['analytics'].port}"],
        "shop-origin": [f"127.0.0.1:{fleet.procs['origin'].port}"],
        "shop-edge": [f"127.0.0.1:{fleet.edge_admin}"],
    }


def test_prometheus_scrapes_every_process_with_the_documented_jobs(
    fleet: Fleet, tmp_path: Path
) -> None:
    jobs = fleet_jobs(fleet)
    documented = (ROOT / "docs" / "deploy.md").read_text().partition("scrape_configs:")[2]
    assert set(re.findall(r"job_name: (\S+)", documented)) == set(jobs)
    with prometheus(jobs, tmp_path) as base:
        for series in (
            'shop_http_requests_total{job="shop-app"}',
            'shop_front_requests_total{job="shop-front"}',
            'commercekit_balancer_health_transitions_total{job="shop-front"}',
            'shop_http_requests_total{job="shop-origin"}',
            'shop_http_requests_total{job="shop-analytics"}',
            'commercekit_cdn_served_bytes_total{job="shop-edge"}',
        ):
            assert prom_query(base, series), f"{series} did not reach Prometheus"


@contextlib.contextmanager
def admin_server(env: dict[str, str], *, seed: bool) -> Iterator[str]:
    """An app server (uvicorn in a thread of this process) with *env*'s settings; its URL."""
    with shop_in_thread(env, "shop-admin", seed=seed) as (url, _):
        yield url


def test_the_admin_reads_its_operations_charts_from_prometheus(
    fleet: Fleet, tmp_path: Path
) -> None:
    names = {f"127.0.0.1:{fleet.procs[n].port}": n for n in fleet.app_names()}
    with prometheus(fleet_jobs(fleet), tmp_path) as prom:
        env = {**fleet.env, "SHOP_DATA_DIR": str(fleet.settings.data_dir)}
        env.update(SHOP_PROMETHEUS_URL=prom, SHOP_SERVER_NAME="app-admin")
        with (
            admin_server(env, seed=False) as base,
            _admin(base, fleet.settings.data_dir) as (
                admin,
                _,
            ),
        ):
            ops: dict[str, Any] = {}
            deadline = time.monotonic() + 60
            with httpx.Client(base_url=fleet.url) as shopper:
                while time.monotonic() < deadline:
                    for n in range(20):  # traffic through the front to both app servers
                        shopper.cookies.clear()
                        shopper.get(f"/api/products/p00{1 + n % 9}")
                    ops = admin.get("/admin/ops.json").json()
                    busy = {s["name"] for s in ops["servers"] if s["rps"] > 0}
                    if busy == set(names.values()) and all(s["p50_ms"] for s in ops["servers"]):
                        break
                    time.sleep(1)
            assert ops["source"] == "prometheus", ops
            assert ops["unavailable"] is None, ops
            assert ops["window_s"] == 60
            servers = {s["name"]: s for s in ops["servers"]}
            assert set(servers) == set(names.values()), ops  # not the admin's own process
            for s in servers.values():
                assert s["rps"] > 0, ops
                assert s["requests"] > 0, ops
                assert 0 < s["p50_ms"] <= s["p99_ms"], ops
                assert s["error_rate"] == 0.0, ops
            assert set(ops["balancer"]) == set(names.values()), ops
            assert all(b["in service"] == 1.0 for b in ops["balancer"].values()), ops
            assert ops["statements"], ops  # the app servers' SQLite statements
            assert sum(ops["cdn"].values()) >= 0
            # The figures are PromQL's over what Prometheus scraped: the same rate asked directly.
            direct = prom_query(
                prom, 'sum(increase(shop_http_requests_total{job="shop-app"}[60s]))'
            )
            assert float(direct[0]["value"][1]) > 0
            page = admin.get("/admin")
            assert page.status_code == 200
            assert "Prometheus" in page.text
            assert 'id="ops-unavailable"' not in page.text
            assert page.text.count('class="bar"') > 0


def _refused_url() -> str:
    """A loopback address where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize("state", ["stopped", "silent"])
def test_the_admin_says_so_when_prometheus_is_stopped_or_silent(tmp_path: Path, state: str) -> None:
    """A stopped Prometheus (port closed) and one that accepts but never answers."""
    silent = socket.socket()
    try:
        if state == "stopped":  # a real Prometheus, stopped: its port refuses
            with prometheus({}, tmp_path) as prom:
                pass
        else:  # listening, never answering: connections wait in the backlog
            silent.bind(("127.0.0.1", 0))
            silent.listen(16)
            prom = f"http://127.0.0.1:{silent.getsockname()[1]}"
        env = shop_env(tmp_path / "shop", SHOP_SEED_PRODUCTS="6", SHOP_PROMETHEUS_URL=prom + "/")
        with admin_server(env, seed=True) as base, _admin(base, tmp_path / "shop") as (admin, _):
            started = time.monotonic()
            page = admin.get("/admin", timeout=30)
            took = time.monotonic() - started
            ops = admin.get("/admin/ops.json", timeout=30).json()
    finally:
        silent.close()
    assert page.status_code == 200, page.text
    assert took < 10, took  # the 2 s bound, and the business charts
    assert 'id="ops-unavailable"' in page.text
    assert f"Prometheus at {prom}" in page.text
    assert ops["source"] == "prometheus"
    why = "did not answer within 2 s" if state == "silent" else "could not be reached"
    assert why in ops["unavailable"], ops
    assert ops["servers"] == [], ops
    assert ops["balancer"] == {}, ops
    ops_section = page.text.partition('id="ops-charts"')[2].partition("</section>")[0]
    assert 'rect class="bar"' not in ops_section
    assert ops_section.count(f'data-empty="Prometheus at {prom}') == 7, ops_section
