"""A generated shop history, and the reference aggregates DuckDB computes from it.

The reference reads the raw events (their wire JSON) with DuckDB SQL only, so
it shares no code with the aggregates it checks. The history has visitors who
browse anonymously and sign in (``Identify`` or ``Alias``) before or after
buying, guests who buy and sign in on a later visit, and shared devices whose
anonymous id two customers sign in from; the reference applies the identity
rule in SQL: an id is its earliest link's customer (by time, then event id).
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from commercekit.analytics import (
    AnalyticsEvent,
    FunnelSpec,
    LineItem,
    Reports,
    alias,
    checkout_started,
    identify,
    order_completed,
    order_refunded,
    product_added,
    product_viewed,
    products_searched,
)
from commercekit.money import Money

FUNNEL = FunnelSpec(
    "checkout", ("Product Viewed", "Product Added", "Checkout Started", "Order Completed"), 3600
)
FUNNEL_ARG = "checkout=Product Viewed>Product Added>Checkout Started>Order Completed@3600"
CURRENCIES = {"EUR": 100, "USD": 100, "JPY": 1, "KWD": 1000}
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def generate(
    n_events: int, *, seed: int = 7, products: int = 300, identities: bool = True
) -> list[AnalyticsEvent]:
    """About *n_events* events of browsing, carts, orders in four currencies, and refunds.

    With *identities*, some customers start each visit anonymously and sign in
    during it (or never, or on a later visit), and order lines carry a SKU
    beside the product id.
    """
    rng = random.Random(seed)
    events: list[AnalyticsEvent] = []
    prices = {
        cur: [
            Money.from_minor(rng.randint(1, 500) * (m if m > 1 else 100), cur)
            for _ in range(products)
        ]
        for cur, m in CURRENCIES.items()
    }
    customer = 0
    while len(events) < n_events:
        customer += 1
        who = f"c{customer}"
        cur = rng.choice(list(CURRENCIES))
        t = START_MS + rng.randint(0, 56 * 86_400_000)
        anon, anonymous, sign_in_at, guest = "", False, "never", False
        if identities:  # (without, the history is the one it was before identities)
            # A shared device now and then: the previous customer's anonymous id.
            anon = f"a{customer - 1 if customer > 1 and rng.random() < 0.05 else customer}"
            anonymous = rng.random() < 0.5
            sign_in_at = rng.choice(("add", "checkout", "never", "after"))
            guest = anonymous and rng.random() < 0.15  # checks out as a guest, signs in later

        linked = False
        for visit in range(rng.choice((1, 1, 1, 2, 3))):
            ident: dict[str, Any] = {"customer_id": who}
            if anonymous and not linked:
                ident = {"anonymous_id": anon}
                if visit > 0 and (guest or sign_in_at != "never"):  # signs in on coming back
                    events.append(_link(rng, anon, who, t))
                    ident, linked = {"customer_id": who}, True
            if rng.random() < 0.3:
                q = rng.choice(["shoes", "red hat", "umbrella", "zzz", "gift card"])
                results = 0 if q == "zzz" or rng.random() < 0.1 else rng.randint(1, 40)
                events.append(products_searched(q, results=results, timestamp_ms=t, **ident))
                t += rng.randint(1, 60) * 1000
            picks = rng.sample(range(products), rng.randint(1, 4))
            for p in picks:
                events.append(product_viewed(f"p{p}", prices[cur][p], timestamp_ms=t, **ident))
                t += rng.randint(1, 300) * 1000
            if rng.random() < 0.6:
                if anonymous and not linked and not guest and sign_in_at == "add":
                    events.append(_link(rng, anon, who, t))
                    ident, linked = {"customer_id": who}, True
                basket = [
                    LineItem(
                        f"p{p}",
                        prices[cur][p],
                        rng.randint(1, 3),
                        sku=f"p{p}-{rng.choice('SML')}" if identities else None,
                    )
                    for p in picks[: rng.randint(1, len(picks))]
                ]
                for item in basket:
                    events.append(
                        product_added(
                            item.product_id, item.price, item.quantity, timestamp_ms=t, **ident
                        )
                    )
                    t += rng.randint(1, 600) * 1000
                total = sum((i.price * i.quantity for i in basket), Money.zero(cur))
                order_id = f"o{customer}-{len(events)}"
                if rng.random() < 0.7:
                    if anonymous and not linked and not guest and sign_in_at == "checkout":
                        events.append(_link(rng, anon, who, t))
                        ident, linked = {"customer_id": who}, True
                    events.append(
                        checkout_started(order_id, total, basket, timestamp_ms=t, **ident)
                    )
                    t += rng.randint(1, 1800) * 1000
                    if rng.random() < 0.8:
                        events.append(
                            order_completed(order_id, total, basket, timestamp_ms=t, **ident)
                        )
                        if rng.random() < 0.05:
                            part = Money.from_minor(rng.randint(1, total.amount_minor), cur)
                            events.append(
                                order_refunded(order_id, part, timestamp_ms=t + 86_400_000, **ident)
                            )
            if anonymous and not linked and not guest and sign_in_at == "after":
                events.append(_link(rng, anon, who, t + 1000))
                linked = True
            t += rng.randint(1, 21) * 86_400_000
    return events


def _link(rng: random.Random, anon: str, who: str, t: int) -> AnalyticsEvent:
    """A sign-in: Segment's identify, or (one time in five) an alias."""
    if rng.random() < 0.2:
        return alias(anon, who, timestamp_ms=t)
    return identify(who, anon, timestamp_ms=t)


def malformed_bodies() -> list[bytes]:
    """Messages that must be parked, never applied, never stopping the consumer."""
    float_total = {
        "event_id": "bad-float-total",
        "event": "Order Completed",
        "timestamp_ms": START_MS,
        "customer_id": "x",
        "properties": {"total": 12.5, "currency": "EUR", "products": []},
    }
    return [
        b"not json at all",
        b'{"event": "Product Viewed"}',
        json.dumps(float_total).encode(),
        b'{"event_id":"no-who","event":"Product Viewed","timestamp_ms":1,"properties":{}}',
    ]


# -- the reference, in DuckDB SQL over the raw JSON -----------------------------------


def reference(events: Sequence[AnalyticsEvent], funnel: FunnelSpec = FUNNEL) -> dict[str, Any]:
    """Aggregates straight from the raw history, computed by DuckDB."""
    import duckdb

    con = duckdb.connect()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw.jsonl"
        path.write_bytes(b"\n".join(e.to_bytes() for e in events) + b"\n")
        con.execute(
            "CREATE TABLE raw AS SELECT json::VARCHAR AS body FROM read_json_objects(?, "
            "format = 'newline_delimited')",
            [str(path)],
        )
    con.execute(
        "CREATE TABLE cur AS SELECT * FROM (VALUES "
        + ",".join(f"('{c}', {m})" for c, m in CURRENCIES.items())
        + ") t(code, minor)"
    )
    con.execute(
        """
        CREATE TABLE raw_ev AS SELECT DISTINCT
          json_extract_string(body, '$.event_id') AS id,
          json_extract_string(body, '$.event') AS name,
          json_extract_string(body, '$.customer_id') AS customer,
          json_extract_string(body, '$.anonymous_id') AS anon,
          CAST(json_extract(body, '$.timestamp_ms') AS BIGINT) AS ts,
          json_extract(body, '$.properties') AS props
        FROM raw
        """
    )
    # The identity rule: an id an Identify (its anonymous id) or an Alias (its previous_id)
    # names is the customer of its earliest link, by time and then event id.
    con.execute(
        """
        CREATE TABLE links AS SELECT source, person FROM (
          SELECT source, customer AS person,
                 row_number() OVER (PARTITION BY source ORDER BY ts, id) AS k
          FROM (SELECT CASE name WHEN 'Identify' THEN anon
                                 ELSE json_extract_string(props, '$.previous_id') END AS source,
                       customer, ts, id
                FROM raw_ev WHERE name IN ('Identify', 'Alias')))
        WHERE k = 1
        """
    )
    con.execute(
        """
        CREATE TABLE ev AS SELECT r.id, r.name,
          coalesce(l.person, coalesce(r.customer, r.anon)) AS who, r.ts, r.props
        FROM raw_ev r LEFT JOIN links l ON l.source = coalesce(r.customer, r.anon)
        WHERE r.name NOT IN ('Identify', 'Alias')
        """
    )
    day = "strftime(to_timestamp(ts / 1000)::TIMESTAMP, '%Y-%m-%d')"
    minor = "CAST(round(CAST({} AS DECIMAL(20, 4)) * cur.minor) AS BIGINT)"
    out: dict[str, Any] = {}
    out["revenue"] = sorted(
        con.execute(
            f"""
            SELECT {day} AS day, json_extract_string(props, '$.currency') AS c,
              count(*) FILTER (WHERE name = 'Order Completed'),
              coalesce(sum({minor.format("json_extract_string(props, '$.total')")})
                FILTER (WHERE name = 'Order Completed'), 0),
              count(*) FILTER (WHERE name = 'Order Refunded'),
              coalesce(sum({minor.format("json_extract_string(props, '$.total')")})
                FILTER (WHERE name = 'Order Refunded'), 0)
            FROM ev JOIN cur ON cur.code = json_extract_string(props, '$.currency')
            WHERE name IN ('Order Completed', 'Order Refunded')
            GROUP BY ALL
            """
        ).fetchall()
    )
    lines = """
        SELECT ev.ts, ev.who, json_extract_string(props, '$.currency') AS c, p.product_id,
               p.price, p.quantity
        FROM ev, unnest(from_json(json_extract(props, '$.products'),
             '[{"product_id":"VARCHAR","price":"VARCHAR","quantity":"INTEGER"}]')) AS u(p)
        WHERE name = 'Order Completed'
    """
    out["bought"] = dict(
        con.execute(f"SELECT product_id, sum(quantity) FROM ({lines}) GROUP BY 1").fetchall()
    )
    out["product_revenue"] = sorted(
        con.execute(
            f"""SELECT product_id, c, sum(quantity), sum({minor.format("price")} * quantity)
            FROM ({lines}) l JOIN cur ON cur.code = l.c GROUP BY ALL"""
        ).fetchall()
    )
    out["viewed"] = dict(
        con.execute(
            "SELECT json_extract_string(props, '$.product_id'), count(*) FROM ev "
            "WHERE name = 'Product Viewed' GROUP BY 1"
        ).fetchall()
    )
    out["added"] = dict(
        con.execute(
            "SELECT json_extract_string(props, '$.product_id'), "
            "sum(CAST(json_extract(props, '$.quantity') AS INTEGER)) FROM ev "
            "WHERE name = 'Product Added' GROUP BY 1"
        ).fetchall()
    )
    out["abandonment"] = con.execute(
        """
        WITH a AS (SELECT who, min(ts) AS first_add FROM ev
                   WHERE name = 'Product Added' GROUP BY who),
             o AS (SELECT who, max(ts) AS last_order FROM ev
                   WHERE name = 'Order Completed' GROUP BY who)
        SELECT count(*), count(*) FILTER (WHERE o.last_order IS NULL OR o.last_order < a.first_add)
        FROM a LEFT JOIN o USING (who)
        """
    ).fetchone()
    out["searches"] = sorted(
        con.execute(
            "SELECT json_extract_string(props, '$.query') AS q, count(*), "
            "count(*) FILTER (WHERE CAST(json_extract(props, '$.results') AS INTEGER) = 0) "
            "FROM ev WHERE name = 'Products Searched' GROUP BY 1 HAVING count(*) FILTER "
            "(WHERE CAST(json_extract(props, '$.results') AS INTEGER) = 0) > 0"
        ).fetchall()
    )
    out["funnel"] = _funnel(con, funnel, day)
    out["cohorts"] = _cohorts(con)
    out["co"] = {
        (a, b): n
        for a, b, n in con.execute(
            f"""WITH bp AS (SELECT DISTINCT who, product_id FROM ({lines}))
            SELECT x.product_id, y.product_id, count(*) FROM bp x JOIN bp y
              ON x.who = y.who AND x.product_id <> y.product_id GROUP BY 1, 2"""
        ).fetchall()
    }
    return out


def _funnel(con: Any, f: FunnelSpec, day: str) -> dict[str, Any]:
    w = f.window_s * 1000
    sql = [f"s0 AS (SELECT who, min(ts) AS t0 FROM ev WHERE name = '{f.steps[0]}' GROUP BY who)"]
    for k in range(1, len(f.steps)):
        keep = ", ".join(f"s.t{j}" for j in range(k))
        sql.append(
            f"s{k} AS (SELECT s.who, {keep}, min(e.ts) AS t{k} FROM s{k - 1} s JOIN ev e "
            f"ON e.who = s.who AND e.name = '{f.steps[k]}' AND e.ts >= s.t{k - 1} "
            f"AND e.ts <= s.t0 + {w} GROUP BY s.who, {keep})"
        )
    counts: dict[str, list[int]] = {}
    n = len(f.steps)
    for k in range(n):
        for d, c in con.execute(
            f"WITH {', '.join(sql)} SELECT "
            f"strftime(to_timestamp(t0 / 1000)::TIMESTAMP, '%Y-%m-%d'), count(*) "
            f"FROM s{k} GROUP BY 1"
        ).fetchall():
            counts.setdefault(d, [0] * n)[k] = c
    (median,) = con.execute(
        f"WITH {', '.join(sql)} SELECT median(t{n - 1} - t0) / 1000.0 FROM s{n - 1}"
    ).fetchone()
    return {"days": counts, "median_s": median}


def _cohorts(con: Any) -> dict[str, list[int]]:
    rows = con.execute(
        """
        WITH w AS (SELECT DISTINCT who,
                     date_trunc('week', to_timestamp(ts / 1000)::TIMESTAMP)::DATE AS week
                   FROM ev WHERE name = 'Order Completed'),
             f AS (SELECT who, min(week) AS w0 FROM w GROUP BY who)
        SELECT strftime(f.w0, '%Y-%m-%d'), date_diff('week', f.w0, w.week) AS k, count(*)
        FROM w JOIN f USING (who) GROUP BY 1, 2
        """
    ).fetchall()
    out: dict[str, list[int]] = {}
    for w0, k, n in rows:
        if k < 8:
            out.setdefault(w0, [0] * 8)[k] = n
    return out


def assert_matches(reports: Reports, ref: dict[str, Any]) -> None:
    """Every stored aggregate equals the DuckDB reference (money to the minor unit)."""
    got_rev = sorted(
        (
            r.day,
            r.gross.currency.code,
            r.orders,
            r.gross.amount_minor,
            r.refunds,
            r.refunded.amount_minor,
        )
        for r in reports.revenue()
    )
    assert got_rev == ref["revenue"]
    totals: dict[str, int] = {}
    for _d, c, _o, g, _r, _rf in ref["revenue"]:
        totals[c] = totals.get(c, 0) + g
    assert {c: m.amount_minor for c, m in reports.revenue_totals().items()} == totals
    got_pr = sorted(
        (p.product, p.revenue.currency.code, p.quantity, p.revenue.amount_minor)
        for p in reports.product_revenue(limit=1_000_000)
    )
    assert got_pr == ref["product_revenue"]
    for kind in ("viewed", "added", "bought"):
        got = {p.product: p.count for p in reports.top_products(kind, limit=1_000_000)}
        assert got == ref[kind], kind
    a = reports.cart_abandonment()
    assert (a.carts, a.abandoned) == tuple(ref["abandonment"])
    got_s = sorted(
        (s.query, s.searches, s.no_result) for s in reports.no_result_searches(limit=1000)
    )
    assert got_s == ref["searches"]
    f = reports.funnel(FUNNEL.name)
    assert {d.day: list(d.counts) for d in f.days} == ref["funnel"]["days"]
    assert f.total.median_convert_s == ref["funnel"]["median_s"]
    got_c = {c.week: [round(x * c.size) for x in c.retention] for c in reports.cohorts(weeks=8)}
    assert got_c == ref["cohorts"]
    store = reports.store
    co = store.schema.co_counts
    with store.db.unit_of_work(read_only=True) as uow:
        got_co = {(x, y): n for x, y, n in uow.session.execute(co.select()).all() if n}
    assert got_co == ref["co"]
