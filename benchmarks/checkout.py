"""Benchmark of the commerce checkout: the saga beside a minimal plain-SQLAlchemy checkout.

Prints, from one run:

* **uncontended checkouts/s** over 1,000 SKUs (baskets of 3), on SQLite (a
  file, WAL) and on PostgreSQL (the machine's server, a database made for the
  run), for ``Commerce.checkout.place`` and for the *floor*: the same
  statements a minimal correct checkout must issue (guarded reserve, the
  order and its allocation in one transaction, authorize and capture through
  the same ``PaymentService``) written in plain SQLAlchemy, with no saga log,
  no lease, no outbox and no events. Target: ours <= 1.5x the floor's time.
* **cart add-line**: ``Carts.add`` beside plain SQLAlchemy reading the cart
  row, applying the line and writing it back with its version check.
  Target: <= 1.3x.
* **the flash sale** (PostgreSQL): 2,000 buyers for 100 units of one SKU from
  4 processes, through the saga, beside the same flow written with
  ``SELECT ... FOR UPDATE`` on the stock row; checkouts/s, p50/p99 latency,
  and exactly 100 orders for each.

::

    .venv/bin/python benchmarks/checkout.py            # the table
    .venv/bin/python benchmarks/checkout.py --json     # one JSON object
    .venv/bin/python benchmarks/checkout.py --quick    # SQLite only, small counts

The script reports; it does not fail on a miss.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine

from commercekit.commerce import Commerce, metadata
from commercekit.commerce.cart import Carts, CartState
from commercekit.errors import OutOfStockError
from commercekit.money import Money
from commercekit.payments import (
    Card,
    InMemoryIdempotencyStore,
    PaymentService,
    SandboxGateway,
)
from commercekit.repository import (
    Database,
    Node,
    ReplicatedTopology,
    engine_from_url,
    sqlite_engine,
)

CARD = Card("4242424242424242", 12, 2035, cvv="123")
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
TARGET_CHECKOUT_RATIO = 1.5
TARGET_CART_RATIO = 1.3

T = metadata.tables


def make_shop(engine: sa.Engine) -> tuple[Database, Commerce, PaymentService]:
    db = Database(ReplicatedTopology(Node("primary", engine)))
    payments = PaymentService(SandboxGateway(), InMemoryIdempotencyStore())
    shop = Commerce.from_database(
        db, payments=payments, tax_rates={"DE": "0.19"}, prices_include_tax=True
    )
    return db, shop, payments


def seed(shop: Commerce, skus: int, stock: int) -> list[str]:
    names = [f"SKU{i:05d}" for i in range(skus)]
    c = shop.db
    with c.unit_of_work() as uow:  # bulk rows (the benchmark's setup, not measured)
        uow.session.execute(
            T["ck_products"].insert(),
            [
                {"id": f"p{n}", "name": n, "attributes": "{}", "images": "[]", "active": True,
                 "created_at": 0.0}
                for n in names
            ],
        )  # fmt: skip
        uow.session.execute(
            T["ck_variants"].insert(),
            [{"sku": n, "product_id": f"p{n}", "attributes": "{}", "active": True} for n in names],
        )
        uow.session.execute(
            T["ck_prices"].insert(),
            [{"sku": n, "channel": "default", "currency": "EUR", "amount_minor": 999}
             for n in names],
        )  # fmt: skip
        uow.session.execute(
            T["ck_stock"].insert(),
            [{"sku": n, "location": "default", "on_hand": stock, "allocated": 0, "reserved": 0}
             for n in names],
        )  # fmt: skip
    return names


def carts(shop: Commerce, names: list[str], count: int, rng: random.Random) -> list[str]:
    out = []
    with shop.db.unit_of_work() as uow:
        for _ in range(count):
            state = CartState()
            for s in rng.sample(names, 3):
                state = state.add(s, 1)
            cid = uuid.uuid4().hex
            uow.session.execute(
                T["ck_carts"].insert().values(
                    id=cid, customer_id=None, currency="EUR", state=state.to_json(),
                    voucher=None, version=1, status="open", created_at=0.0, updated_at=0.0,
                )
            )  # fmt: skip
            out.append(cid)
    return out


# -- the floor: a minimal correct checkout in plain SQLAlchemy ---------------------------


def floor_checkout(engine: sa.Engine, payments: PaymentService, cart_id: str, lock: bool) -> bool:
    """Guarded reserve, authorize, order + allocation in one transaction, capture, close cart.

    *lock* uses ``SELECT ... FOR UPDATE`` on the stock rows and a check in
    Python instead of the guarded UPDATE (the flash sale's comparison).
    """
    stock, res, lines = T["ck_stock"], T["ck_reservations"], T["ck_reservation_lines"]
    rid = f"f{cart_id}"
    with engine.begin() as c:
        state = CartState.from_json(
            c.execute(
                sa.select(T["ck_carts"].c.state).where(T["ck_carts"].c.id == cart_id)
            ).scalar_one()
        )
        basket = state.lines()
        prices = dict(
            c.execute(
                sa.select(T["ck_prices"].c.sku, T["ck_prices"].c.amount_minor).where(
                    T["ck_prices"].c.sku.in_(list(basket)), T["ck_prices"].c.currency == "EUR"
                )
            ).all()
        )
        c.execute(res.insert().values(id=rid, status="live", expires_at=1e12, created_at=0.0))
        for sku, qty in sorted(basket.items()):
            where = (stock.c.sku == sku, stock.c.location == "default")
            if lock:
                row = c.execute(
                    sa.select(stock.c.on_hand, stock.c.allocated, stock.c.reserved)
                    .where(*where)
                    .with_for_update()
                ).one()
                if row[0] - row[1] - row[2] < qty:
                    raise OutOfStockError(sku, sku=sku)
                c.execute(sa.update(stock).where(*where).values(reserved=stock.c.reserved + qty))
            else:
                done = c.execute(
                    sa.update(stock)
                    .where(*where, stock.c.on_hand - stock.c.allocated - stock.c.reserved >= qty)
                    .values(reserved=stock.c.reserved + qty)
                ).rowcount
                if not done:
                    raise OutOfStockError(sku, sku=sku)
        c.execute(
            lines.insert(),
            [{"reservation_id": rid, "sku": s, "location": "default", "qty": q, "shipped": 0}
             for s, q in basket.items()],
        )  # fmt: skip
    total = Money.from_minor(sum(prices[s] * q for s, q in basket.items()), "EUR")
    payments.authorize(rid, total, CARD, idempotency_key=f"{rid}:authorize")
    oid = uuid.uuid4().hex
    with engine.begin() as c:
        c.execute(
            T["ck_orders"].insert().values(
                id=oid, number=oid[:12], checkout_key=rid, customer_id=None, currency="EUR",
                status="placed", payment_status="authorized", fulfilment_status="unfulfilled",
                subtotal_minor=total.amount_minor, discount_minor=0, shipping_minor=0,
                tax_minor=0, total_minor=total.amount_minor, captured_minor=0, refunded_minor=0,
                payment_id=rid, reservation_id=rid, voucher=None, version=1, created_at=0.0,
                updated_at=0.0,
            )
        )  # fmt: skip
        c.execute(
            T["ck_order_lines"].insert(),
            [{"order_id": oid, "line_no": i, "sku": s, "qty": q, "unit_price_minor": prices[s],
              "discount_minor": 0, "tax_minor": 0, "gross_minor": prices[s] * q, "fulfilled": 0,
              "returned": 0, "refunded_minor": 0}
             for i, (s, q) in enumerate(sorted(basket.items()), 1)],
        )  # fmt: skip
        c.execute(sa.update(res).where(res.c.id == rid, res.c.status == "live")
                  .values(status="committed"))  # fmt: skip
        for sku, qty in sorted(basket.items()):
            c.execute(
                sa.update(stock)
                .where(stock.c.sku == sku, stock.c.location == "default")
                .values(reserved=stock.c.reserved - qty, allocated=stock.c.allocated + qty)
            )
    payments.capture(rid, idempotency_key=f"{rid}:capture")
    with engine.begin() as c:
        c.execute(sa.update(T["ck_orders"]).where(T["ck_orders"].c.id == oid)
                  .values(payment_status="paid", captured_minor=total.amount_minor))  # fmt: skip
        c.execute(sa.update(T["ck_carts"]).where(T["ck_carts"].c.id == cart_id)
                  .values(status="completed"))  # fmt: skip
    return True


# -- measurements ------------------------------------------------------------------------


def uncontended(engine: sa.Engine, n: int) -> dict[str, float]:
    _db, shop, payments = make_shop(engine)
    metadata.create_all(engine)
    names = seed(shop, 1000, 10**6)
    rng = random.Random(1)
    ours_carts, floor_carts = carts(shop, names, n, rng), carts(shop, names, n, rng)
    # warm both paths
    shop.checkout.place(ours_carts.pop(), CARD, region="DE")
    floor_checkout(engine, payments, floor_carts.pop(), lock=False)
    t_ours = t_floor = 0.0
    for a, b in zip(ours_carts, floor_carts, strict=True):  # alternate, so load hits both
        t0 = time.perf_counter()
        shop.checkout.place(a, CARD, region="DE")
        t1 = time.perf_counter()
        floor_checkout(engine, payments, b, lock=False)
        t2 = time.perf_counter()
        t_ours += t1 - t0
        t_floor += t2 - t1
    k = len(ours_carts)
    return {
        "ours_per_s": k / t_ours,
        "floor_per_s": k / t_floor,
        "ratio": t_ours / t_floor,
        "ours_ms": 1000 * t_ours / k,
        "floor_ms": 1000 * t_floor / k,
    }


def cart_adds(engine: sa.Engine, n: int) -> dict[str, float]:
    db = Database(ReplicatedTopology(Node("primary", engine)))
    metadata.create_all(engine)
    service = Carts(db)
    ours = service.create("EUR").id
    plain = service.create("EUR").id
    table = T["ck_carts"]

    def plain_add(cart_id: str, sku: str) -> None:
        with engine.begin() as c:
            state, version = c.execute(
                sa.select(table.c.state, table.c.version).where(table.c.id == cart_id)
            ).one()
            new = CartState.from_json(state).add(sku, 1)
            done = c.execute(
                sa.update(table)
                .where(table.c.id == cart_id, table.c.version == version)
                .values(state=new.to_json(), version=version + 1, updated_at=time.time())
            ).rowcount
            assert done == 1

    t_ours = t_plain = 0.0
    for i in range(n):
        sku = f"SKU{i % 40:05d}"
        t0 = time.perf_counter()
        service.add(ours, sku, 1)
        t1 = time.perf_counter()
        plain_add(plain, sku)
        t2 = time.perf_counter()
        t_ours += t1 - t0
        t_plain += t2 - t1
    return {
        "ours_us": 1e6 * t_ours / n,
        "plain_us": 1e6 * t_plain / n,
        "ratio": t_ours / t_plain,
    }


def _flash_worker(url: str, carts_: list[str], lock: bool, start: Any, out: Any) -> None:
    engine = engine_from_url(url, pool_size=4)
    _db, shop, payments = make_shop(engine)
    start.wait()
    ok = sold = 0
    latencies = []
    t_start = time.perf_counter()
    for cart_id in carts_:
        t0 = time.perf_counter()
        try:
            if lock:
                floor_checkout(engine, payments, cart_id, lock=True)
            else:
                shop.checkout.place(cart_id, CARD, region="DE")
            ok += 1
        except OutOfStockError:
            sold += 1
        latencies.append(time.perf_counter() - t0)
    out.put((ok, sold, latencies, time.perf_counter() - t_start))
    engine.dispose()


def flash_sale(url: str, buyers: int, units: int, procs: int) -> dict[str, Any]:
    engine = engine_from_url(url)
    metadata.create_all(engine)
    _db, _shop, _ = make_shop(engine)
    report: dict[str, Any] = {}
    for variant, lock in (("ours", False), ("for_update", True)):
        sku = f"FLASH-{variant}"
        with engine.begin() as c:
            c.execute(
                T["ck_products"]
                .insert()
                .values(
                    id=f"p{sku}",
                    name=sku,
                    attributes="{}",
                    images="[]",
                    active=True,
                    created_at=0.0,
                )
            )
            c.execute(
                T["ck_variants"]
                .insert()
                .values(sku=sku, product_id=f"p{sku}", attributes="{}", active=True)
            )
            c.execute(
                T["ck_prices"]
                .insert()
                .values(sku=sku, channel="default", currency="EUR", amount_minor=999)
            )
            c.execute(
                T["ck_stock"]
                .insert()
                .values(sku=sku, location="default", on_hand=units, allocated=0, reserved=0)
            )
        with engine.begin() as c:
            ids = []
            for _ in range(buyers):
                cid = uuid.uuid4().hex
                c.execute(T["ck_carts"].insert().values(
                    id=cid, customer_id=None, currency="EUR",
                    state=CartState().add(sku, 1).to_json(), voucher=None, version=1,
                    status="open", created_at=0.0, updated_at=0.0))  # fmt: skip
                ids.append(cid)
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Barrier(procs)
        out: Any = ctx.Queue()
        workers = [
            ctx.Process(target=_flash_worker, args=(url, ids[i::procs], lock, start, out))
            for i in range(procs)
        ]
        for w in workers:
            w.start()
        results = [out.get(timeout=1800) for _ in workers]
        for w in workers:
            w.join()
        lat = sorted(x for r in results for x in r[2])
        wall = max(r[3] for r in results)
        report[variant] = {
            "orders": sum(r[0] for r in results),
            "sold_out": sum(r[1] for r in results),
            "attempts_per_s": buyers / wall,
            "p50_ms": 1000 * lat[len(lat) // 2],
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "wall_s": wall,
        }
        with engine.connect() as c:
            row = c.execute(sa.select(T["ck_stock"]).where(T["ck_stock"].c.sku == sku)).one()
            report[variant]["allocated"] = row.allocated
            report[variant]["reserved"] = row.reserved
    engine.dispose()
    return report


def postgres_database() -> tuple[str, sa.Engine] | None:
    name = f"ck_bench_{uuid.uuid4().hex[:10]}"
    try:
        admin = engine_from_url(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # no server here: the SQLite figures still print
        print(f"PostgreSQL not reachable ({type(exc).__name__}); skipping it", file=sys.stderr)
        return None
    return f"{POSTGRES}/{name}", admin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--quick", action="store_true", help="SQLite only, small counts")
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--flash-only", action="store_true", help="only the PostgreSQL flash sale")
    args = parser.parse_args()
    n = 10 if args.quick else 200
    report: dict[str, Any] = {"machine": machine("sqlalchemy")}
    if not args.flash_only:
        with tempfile.TemporaryDirectory() as tmp:
            engine = sqlite_engine(Path(tmp) / "bench.db")
            report["sqlite_checkout"] = uncontended(engine, n)
            report["sqlite_cart_add"] = cart_adds(engine, 10 * n)
            engine.dispose()
        report["meets_sqlite_checkout_ratio"] = (
            report["sqlite_checkout"]["ratio"] <= TARGET_CHECKOUT_RATIO
        )
        report["meets_cart_add_ratio"] = report["sqlite_cart_add"]["ratio"] <= TARGET_CART_RATIO
    pg = None if args.quick else postgres_database()
    if pg is not None:
        url, admin = pg
        try:
            if not args.flash_only:
                engine = engine_from_url(url)
                report["postgres_checkout"] = uncontended(engine, max(20, n // 4))
                engine.dispose()
                report["meets_postgres_checkout_ratio"] = (
                    report["postgres_checkout"]["ratio"] <= TARGET_CHECKOUT_RATIO
                )
            sale = flash_sale(url, args.buyers, args.units, args.processes)
            report["flash_sale"] = sale | {
                "buyers": args.buyers, "units": args.units, "processes": args.processes
            }  # fmt: skip
            report["meets_flash_sale_exact"] = all(
                sale[v]["orders"] == args.units and sale[v]["allocated"] == args.units
                for v in ("ours", "for_update")
            )
        finally:
            with admin.connect() as c:
                c.execute(sa.text(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)"))
            admin.dispose()
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return
    print_table(report)


def print_table(report: dict[str, Any]) -> None:
    print("commerce checkout benchmark")
    for engine in ("sqlite", "postgres"):
        r = report.get(f"{engine}_checkout")
        if r is None:
            continue
        ok = "meets" if report[f"meets_{engine}_checkout_ratio"] else "MISSES"
        print(
            f"  {engine:8s} checkout  ours {r['ours_per_s']:7.1f}/s ({r['ours_ms']:.1f} ms)   "
            f"floor {r['floor_per_s']:7.1f}/s ({r['floor_ms']:.1f} ms)   "
            f"ratio {r['ratio']:.2f}x  {ok} <= {TARGET_CHECKOUT_RATIO}x"
        )
    c = report.get("sqlite_cart_add")
    if c is not None:
        ok = "meets" if report["meets_cart_add_ratio"] else "MISSES"
        print(
            f"  cart add-line  ours {c['ours_us']:.0f} us   plain {c['plain_us']:.0f} us   "
            f"ratio {c['ratio']:.2f}x  {ok} <= {TARGET_CART_RATIO}x"
        )
    sale = report.get("flash_sale")
    if sale:
        print(f"  flash sale: {sale['buyers']} buyers, {sale['units']} units, "
              f"{sale['processes']} processes (PostgreSQL)")  # fmt: skip
        for v in ("ours", "for_update"):
            s = sale[v]
            print(
                f"    {v:10s} orders {s['orders']:4d}  sold out {s['sold_out']:5d}  "
                f"{s['attempts_per_s']:6.1f} attempts/s  p50 {s['p50_ms']:.0f} ms  "
                f"p99 {s['p99_ms']:.0f} ms"
            )


if __name__ == "__main__":
    main()
