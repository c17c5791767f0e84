"""The commerce services on MariaDB: no oversell from threads and processes, no deadlock.

Runs on the machine's MariaDB (127.0.0.1:3306) in a database created for this
module and dropped after it; the payment ledger is a SQLite file every worker
process shares. Inventory invariants are checked after every test.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from commercekit.commerce import Commerce
from commercekit.commerce.inventory import verify_inventory
from commercekit.payments import PaymentService, SqlAlchemyIdempotencyStore
from commercekit.repository import Database, sqlite_engine
from tests.commerce._shop import check_money_invariants
from tests.integration import _commerce as h

pytestmark = pytest.mark.integration

stress = pytest.mark.skipif(
    not os.environ.get("COMMERCEKIT_STRESS"),
    reason="a longer run: set COMMERCEKIT_STRESS=1",
)


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    pytest.importorskip("pymysql")
    ledger = Path(tmp_path_factory.mktemp("ledger")) / "payments.db"
    engine = sqlite_engine(ledger)
    SqlAlchemyIdempotencyStore(engine).create_tables()
    engine.dispose()
    with h.scratch_database(h.MARIADB, "MariaDB") as url:
        db = h.open_database(url)
        db.create_all(__import__("commercekit.commerce", fromlist=["metadata"]).metadata)
        db.close()
        h.dispose_all()
        yield url, f"sqlite:///{ledger}"


@pytest.fixture
def env(urls: tuple[str, str]) -> Iterator[tuple[Database, Commerce, PaymentService]]:
    url, ledger = urls
    db = h.open_database(url)
    payments = h.payments_for(ledger)
    shop = h.shop_for(db, payments)
    yield db, shop, payments
    report = verify_inventory(db)
    assert report.ok, report.drift
    check_money_invariants(shop, payments)
    db.close()
    h.dispose_all()


def sku(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_fifty_threads_for_ten_units(env: tuple[Database, Commerce, PaymentService]) -> None:
    _, shop, _ = env
    drop = sku("DROP")
    h.seed(shop, {drop: 10})
    carts = [h.new_cart(shop, {drop: 1}) for _ in range(50)]
    orders, sold, errors = h.buy_all(shop, carts, threads=50)
    assert errors == []
    assert (orders, sold) == (10, 40)
    level = shop.inventory.level(drop)
    assert (level.allocated, level.reserved) == (10, 0)


@stress
def test_fifty_buyers_from_five_processes_for_ten_units(
    env: tuple[Database, Commerce, PaymentService], urls: tuple[str, str]
) -> None:
    _, shop, _ = env
    url, ledger = urls
    drop = sku("DROP")
    h.seed(shop, {drop: 10})
    carts = [h.new_cart(shop, {drop: 1}) for _ in range(50)]
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(5)
    out: Any = ctx.Queue()
    procs = [
        ctx.Process(target=h.buyer_process, args=(url, ledger, carts[i::5], 2, start, out))
        for i in range(5)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0] * 5
    assert [e for _, _, errors in results for e in errors] == []
    assert sum(r[0] for r in results) == 10
    assert sum(r[1] for r in results) == 40
    assert shop.inventory.level(drop).allocated == 10


@stress
def test_two_hundred_baskets_in_random_order_from_eight_workers_never_deadlock(
    env: tuple[Database, Commerce, PaymentService],
) -> None:
    _, shop, _ = env
    skus = [sku(f"S{i}") for i in range(6)]
    h.seed(shop, dict.fromkeys(skus, 1000))
    done, errors = h.reserve_baskets(shop, h.random_baskets(skus, 200, seed=7), threads=8)
    assert errors == []
    assert done == 200
