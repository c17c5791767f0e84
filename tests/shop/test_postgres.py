"""The shop on PostgreSQL: a primary and a streaming standby picked by the settings alone.

One app server (``SHOP_DATABASE_URL`` on the primary, ``SHOP_REPLICA_URLS`` on
the standby) under a load of reads while the standby is stopped and started
again: no read fails, and the standby serves reads again once it is back. The
admin draws the replica's lag (the SQLite fleet has no replica to draw). The
cluster is the session's ``pg_cluster`` (tests/conftest.py), shared with the
integration tests; the shop works in a database of its own on it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.shop._procs import csrf_of, shop_env, shop_in_thread
from tests.shop.conftest import browser_page

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_app(
    tmp_path_factory: pytest.TempPathFactory, pg_cluster: object
) -> Iterator[tuple[str, Path, object]]:
    """(app server URL, data folder, the PgCluster) for one app server on PostgreSQL.

    The app server is uvicorn in a thread of this process (real HTTP on
    loopback): a new process would spend longer importing than the test runs.
    """
    from tests.integration._servers import PgCluster

    assert isinstance(pg_cluster, PgCluster)
    cluster = pg_cluster
    if "standby1" not in cluster.running:
        cluster.start_node("standby1")
    database = f"shop_{secrets.token_hex(4)}"
    cluster.execute("primary", f"create database {database}")
    data = tmp_path_factory.mktemp("shop-pg")

    def url(node: str) -> str:
        return cluster.url(node).rpartition("/")[0] + "/" + database

    env = shop_env(
        data,
        SHOP_DATABASE_URL=url("primary"),
        SHOP_REPLICA_URLS=url("standby1"),
        SHOP_SERVER_NAME="app-pg",
    )
    with shop_in_thread(env, "shop-pg") as (url, _):
        cluster.wait_caught_up()  # the standby has the catalog before the first read
        yield url, data, cluster


def replica_statements(base: str) -> float:
    """Statements the app server has sent to its replica so far (its /metrics)."""
    total = 0.0
    for line in httpx.get(base + "/metrics").text.splitlines():
        if line.startswith("commercekit_repository_statements_total{") and 'role="replica"' in line:
            total += float(line.rpartition(" ")[2])
    return total


def test_a_standby_stopped_and_restarted_costs_no_failed_read(
    pg_app: tuple[str, Path, object],
) -> None:
    base, _, cluster = pg_app
    with httpx.Client(base_url=base, timeout=30) as c:
        assert c.post("/api/cart/add", json={"sku": "P001-L", "qty": 1}).status_code == 200
        cookies = dict(c.cookies)
    stop_reading = threading.Event()
    failures: list[str] = []
    reads: Counter[str] = Counter()
    phase = ["before"]

    def read(n: int) -> None:
        # The cart page reads each line's variant on a replica; the listing and the
        # product page read the catalog and stock there; /healthz reads the catalog.
        paths = ["/api/cart", f"/api/products/p00{1 + n % 9}", "/healthz", "/api/products"]
        with httpx.Client(base_url=base, timeout=30, cookies=cookies) as c:
            i = n
            while not stop_reading.is_set():
                path = paths[i % len(paths)]
                i += 1
                try:
                    r = c.get(path)
                except httpx.HTTPError as exc:
                    failures.append(f"{path}: {type(exc).__name__}")
                    continue
                if r.status_code != 200:
                    failures.append(f"{path}: {r.status_code} {r.text[:120]}")
                reads[phase[0]] += 1

    def wait_for(count: int, name: str) -> None:
        deadline = time.monotonic() + 30
        while reads[name] < count and time.monotonic() < deadline:
            time.sleep(0.05)

    workers = [threading.Thread(target=read, args=(i,)) for i in range(3)]
    for w in workers:
        w.start()
    try:
        wait_for(20, "before")
        used = replica_statements(base)
        assert used > 0, "the standby served no read before it was stopped"
        cluster.stop_node("standby1")  # type: ignore[attr-defined]
        phase[0] = "down"
        wait_for(40, "down")
        cluster.start_node("standby1")  # type: ignore[attr-defined]
        phase[0] = "back"
        during = replica_statements(base)
        deadline = time.monotonic() + 30
        while replica_statements(base) <= during and time.monotonic() < deadline:
            time.sleep(0.2)
        back = replica_statements(base)
    finally:
        stop_reading.set()
        for w in workers:
            w.join(timeout=30)
    assert failures == [], failures[:10]
    assert reads["down"] >= 40, reads
    assert back > during, "the standby took no read after it came back"


def test_the_admin_draws_statements_and_replica_lag(
    pg_app: tuple[str, Path, object], browser: object, request: pytest.FixtureRequest
) -> None:
    base, data, _ = pg_app
    password = (data / "admin.password").read_text().strip()
    with httpx.Client(base_url=base) as c:  # the dashboard's figures, as JSON
        token = csrf_of(c.get("/admin/login").text)
        c.post("/admin/login", data={"password": password, "csrf": token})
        ops = c.get("/admin/ops.json").json()
    assert ops["replicas"] == 1
    roles = {key.split(":")[0] for key in ops["statements"]}
    assert {"primary", "replica"} <= roles, ops["statements"]
    pages = browser_page(browser, base, request.node.name)
    page = next(pages)
    page.goto("/admin")  # type: ignore[attr-defined]
    page.fill("input[name=password]", password)  # type: ignore[attr-defined]
    page.click("#admin-login")  # type: ignore[attr-defined]
    page.wait_for_selector("#chart-db-lag")  # type: ignore[attr-defined]
    for name in ("db-lag", "db-statements"):
        assert page.locator(f"#chart-{name} rect.bar").count() > 0, name  # type: ignore[attr-defined]
    next(pages, None)  # the screenshot, then the context closes
