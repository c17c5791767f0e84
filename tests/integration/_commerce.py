"""Helpers of the commerce integration tests: a database per run, shops in threads and processes.

Each test module creates its own database on the machine's server
(``ck_commerce_<random>``) and drops it at the end, so runs never meet. Worker
processes are started with ``spawn`` and build their own engines from URLs.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa

from commercekit.commerce import Commerce, metadata
from commercekit.commerce.inventory import verify_inventory
from commercekit.errors import OutOfStockError
from commercekit.money import Money
from commercekit.payments import (
    Card,
    IdempotencyStore,
    PaymentService,
    SandboxGateway,
    SqlAlchemyIdempotencyStore,
    StripeGateway,
)
from commercekit.repository import Database, Node, ReplicatedTopology, engine_from_url
from tests.commerce._shop import check_money_invariants
from tests.conftest import missing_service

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
MARIADB = "mysql://root@127.0.0.1:3306"
GOOD = Card("4242 4242 4242 4242", 12, 2035, cvv="123")
STRIPE_KEY = "sk_test_commercekit"

T = TypeVar("T")


@contextmanager
def scratch_database(server: str, what: str) -> Iterator[str]:
    """Create a uniquely named database on *server*, yield its URL, drop it after."""
    name = f"ck_commerce_{uuid.uuid4().hex[:12]}"
    admin_db = "postgres" if server.startswith("postgresql") else ""
    try:
        admin = engine_from_url(f"{server}/{admin_db}", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except ImportError as exc:
        missing_service(f"the {what} driver is not installed ({exc})")
    except sa.exc.DBAPIError as exc:
        missing_service(f"{what} is not reachable at {server} ({exc.orig})")
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as conn:
            if server.startswith("postgresql"):
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


ENGINES: list[sa.Engine] = []
"""Every engine these helpers made in this process (dispose_all closes them)."""


def _engine(url: str) -> sa.Engine:
    engine = engine_from_url(url, pool_size=30, max_overflow=40, pool_timeout=60)
    ENGINES.append(engine)
    return engine


def dispose_all() -> None:
    while ENGINES:
        ENGINES.pop().dispose()


def open_database(url: str) -> Database:
    return Database(ReplicatedTopology(Node("primary", _engine(url))))


def payments_for(
    store_url: str, *, stripe_url: str | None = None, **options: Any
) -> PaymentService:
    """A PaymentService whose ledger is shared by every process (SQL), over a sandbox or Stripe."""
    store: IdempotencyStore = SqlAlchemyIdempotencyStore(_engine(store_url))
    gateway = (
        StripeGateway(STRIPE_KEY, base_url=stripe_url, timeout_s=10)
        if stripe_url is not None
        else SandboxGateway()
    )
    return PaymentService(gateway, store, **options)


def shop_for(db: Database, payments: PaymentService, **options: Any) -> Commerce:
    return Commerce.from_database(
        db, payments=payments, tax_rates={"DE": "0.19"}, prices_include_tax=True, **options
    )


def create_schema(db: Database, store_url: str) -> None:
    db.create_all(metadata)
    SqlAlchemyIdempotencyStore(_engine(store_url)).create_tables()


def seed(shop: Commerce, stock: dict[str, int]) -> None:
    for sku, qty in stock.items():
        shop.catalog.add_product(sku, [sku], product_id=f"p-{sku}")
        shop.catalog.set_price(sku, Money.of("10.00", "EUR"))
        shop.inventory.set_stock(sku, qty)


def new_cart(shop: Commerce, lines: dict[str, int]) -> str:
    cart = shop.carts.create("EUR")
    for sku, qty in lines.items():
        shop.carts.add(cart.id, sku, qty)
    return cart.id


def _drain(items: list[T], threads: int, work: Callable[[T], None], lock: threading.Lock) -> None:
    """*threads* threads, started together, take *items* from the end one at a time."""
    queue = list(items)
    barrier = threading.Barrier(threads)

    def run() -> None:
        barrier.wait()
        while True:
            with lock:
                if not queue:
                    return
                item = queue.pop()
            work(item)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def buy_all(shop: Commerce, cart_ids: list[str], threads: int) -> tuple[int, int, list[str]]:
    """Check every cart out from *threads* threads: (orders, sold out, other errors)."""
    lock = threading.Lock()
    orders = sold = 0
    errors: list[str] = []

    def buy(cart_id: str) -> None:
        nonlocal orders, sold
        try:
            result = shop.checkout.place(cart_id, GOOD, region="DE")
            with lock:
                orders += result.order is not None
        except OutOfStockError:
            with lock:
                sold += 1
        except Exception as exc:  # counted, and the test fails on any
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    _drain(cart_ids, threads, buy, lock)
    return orders, sold, errors


def reserve_baskets(
    shop: Commerce, baskets: list[dict[str, int]], threads: int
) -> tuple[int, list[str]]:
    """Reserve each basket and commit or release it (the stock-row transactions of a checkout).

    Returns (baskets done, errors that reached the caller).
    """
    lock = threading.Lock()
    done = 0
    errors: list[str] = []
    tag = uuid.uuid4().hex[:8]

    def reserve(item: tuple[int, dict[str, int]]) -> None:
        nonlocal done
        i, basket = item
        rid = f"basket-{tag}-{i}"
        try:
            shop.inventory.reserve(rid, list(basket.items()))  # rows in the basket's order
            if i % 2:
                shop.inventory.commit(rid)
                shop.inventory.cancel_allocation(rid)
            else:
                shop.inventory.release(rid)
            with lock:
                done += 1
        except Exception as exc:  # a deadlock would land here
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    _drain(list(enumerate(baskets)), threads, reserve, lock)
    return done, errors


def random_baskets(skus: list[str], count: int, seed: int) -> list[dict[str, int]]:
    """*count* baskets of 2 to 5 of *skus*, each listing its SKUs in a random order."""
    import random

    rng = random.Random(seed)
    return [
        {s: rng.randint(1, 3) for s in rng.sample(skus, rng.randint(2, min(5, len(skus))))}
        for _ in range(count)
    ]


def buyer_process(
    url: str, store_url: str, cart_ids: list[str], threads: int, start: Any, out: Any
) -> None:
    """A worker process: its own engines and shop; checks its carts out, reports counts."""
    db = open_database(url)
    shop = shop_for(db, payments_for(store_url))
    start.wait()
    out.put(buy_all(shop, cart_ids, threads))


def killed_process(url: str, store_url: str, stripe_url: str, cart_id: str, at: str) -> None:
    """Checks a cart out and SIGKILLs itself at hook point *at* ("phase:step")."""
    phase, step = at.split(":")

    def hook(p: str, s: str, _checkout_id: str) -> None:
        if (p, s) == (phase, step):
            os.kill(os.getpid(), signal.SIGKILL)

    db = open_database(url)
    shop = shop_for(db, payments_for(store_url, stripe_url=stripe_url), hooks=hook, lease_s=1.0)
    shop.checkout.place(cart_id, GOOD, region="DE")


def recovering_process(url: str, store_url: str, stripe_url: str, out: Any) -> None:
    """A fresh process that runs recover() once its clock is past every lease."""
    db = open_database(url)

    def later() -> float:
        return time.time() + 120.0

    shop = shop_for(db, payments_for(store_url, stripe_url=stripe_url), clock=later)
    out.put([(r.checkout_id, r.outcome) for r in shop.checkout.recover()])


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def sku(name: str) -> str:
    """*name* with a random suffix, so tests on a shared database never meet."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


@contextmanager
def commerce_env(url: str, store_url: str) -> Iterator[tuple[Database, Commerce, PaymentService]]:
    """A database, shop and payment service; inventory and money invariants checked at exit."""
    db = open_database(url)
    payments = payments_for(store_url)
    shop = shop_for(db, payments)
    yield db, shop, payments
    report = verify_inventory(db)
    assert report.ok, report.drift
    check_money_invariants(shop, payments)
    db.close()
    dispose_all()


def check_fifty_threads_for_ten_units(shop: Commerce) -> None:
    """Fifty threads buy one of ten units: ten orders, forty sold out, nothing left reserved."""
    drop = sku("DROP")
    seed(shop, {drop: 10})
    carts = [new_cart(shop, {drop: 1}) for _ in range(50)]
    orders, sold, errors = buy_all(shop, carts, threads=50)
    assert errors == []
    assert (orders, sold) == (10, 40)
    level = shop.inventory.level(drop)
    assert (level.allocated, level.reserved) == (10, 0)


def check_fifty_buyers_from_five_processes(
    shop: Commerce, url: str, store_url: str, timeout: float
) -> None:
    """Fifty carts for ten units checked out by five spawned processes of two threads each."""
    drop = sku("DROP")
    seed(shop, {drop: 10})
    carts = [new_cart(shop, {drop: 1}) for _ in range(50)]
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(5)
    out: Any = ctx.Queue()
    procs = [
        ctx.Process(target=buyer_process, args=(url, store_url, carts[i::5], 2, start, out))
        for i in range(5)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0] * 5
    assert [e for _, _, errors in results for e in errors] == [], results
    assert sum(r[0] for r in results) == 10
    assert sum(r[1] for r in results) == 40
    assert shop.inventory.level(drop).allocated == 10


def check_random_baskets_never_deadlock(shop: Commerce) -> None:
    """Two hundred baskets over six SKUs in random order from eight workers all reserve."""
    skus = [sku(f"S{i}") for i in range(6)]
    seed(shop, dict.fromkeys(skus, 1000))
    done, errors = reserve_baskets(shop, random_baskets(skus, 200, seed=7), threads=8)
    assert errors == []  # no deadlock (or any other error) reached a caller
    assert done == 200
