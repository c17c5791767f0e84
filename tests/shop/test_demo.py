"""``python -m shop demo --once`` (``make demo``'s command): the fleet, a crowd, failures, a report.

A shorter crowd than the default 45 s, with the same plan: app-2 SIGKILLed
and started again, the image origin down for a while. Its own fleet, data
folder and ports, so the package's fleet is not disturbed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa

from tests.shop._procs import EXAMPLES, free_port, shop_env

STEPS = ("Product Viewed", "Product Added", "Checkout Started", "Order Completed")
FUNNEL = re.compile(
    r"checkout, unique customers \(commercekit\.analytics\): Product Viewed (\d+) -> "
    r"Product Added (\d+) \((\d+)%\) -> Checkout Started (\d+) \((\d+)%\) -> "
    r"Order Completed (\d+) \((\d+)%\); overall (\d+)%, median time to convert ([\d.]+) s"
)
ANALYTICS = re.compile(
    r"caught up in [\d.]+ s: (\d+) of the (\d+) orders in the database counted \((\d+) by guests"
)


def _rows(url: str, query: str) -> list[sa.Row[tuple[object, ...]]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(query)))
    finally:
        engine.dispose()


def _reference_funnel(events_db: Path, window_ms: int = 3_600_000) -> list[int]:
    """The checkout funnel straight from the raw event log, without commercekit.analytics.

    Per person (customer id, else anonymous id; an anonymous id a sign-in's
    Identify or an Alias names is its earliest link's customer): entered at
    their first Product Viewed, each next step the earliest at or after the
    one before, within the window from entry.
    """
    events = [
        json.loads(bytes(body))  # type: ignore[arg-type]
        for (body,) in _rows(f"sqlite:///{events_db}", "SELECT body FROM ck_eventlog_messages")
    ]
    links: dict[str, tuple[int, str, str]] = {}
    for e in events:
        if e["event"] in ("Identify", "Alias"):
            source = (
                e["anonymous_id"] if e["event"] == "Identify" else e["properties"]["previous_id"]
            )
            link = (int(e["timestamp_ms"]), e["event_id"], e["customer_id"])
            links[source] = min(links.get(source, link), link)
    times: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for event in events:
        if event["event"] in STEPS:
            who = event.get("customer_id") or event["anonymous_id"]
            who = links[who][2] if who in links else who
            times[who][event["event"]].append(int(event["timestamp_ms"]))
    counts = [0] * len(STEPS)
    for steps in times.values():
        if not steps[STEPS[0]]:
            continue
        t = entry = min(steps[STEPS[0]])
        counts[0] += 1
        for k, name in enumerate(STEPS[1:], start=1):
            later = [x for x in steps[name] if t <= x <= entry + window_ms]
            if not later:
                break
            t = min(later)
            counts[k] += 1
    return counts


def test_the_demo_survives_its_failures_and_reports(tmp_path: Path) -> None:
    port = str(free_port())
    done = subprocess.run(
        [sys.executable, "-m", "shop", "demo", "--once", "--seconds", "16", "--port", port],
        cwd=EXAMPLES,
        env=shop_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout
    assert done.returncode == 0, (out[-3000:], done.stderr[-3000:])
    report = out[out.index("== demo report ==") :]
    lines = {line[:14].strip(): line[14:] for line in report.splitlines()[1:]}
    for heading in (
        "requests",
        "errors",
        "failovers",
        "orders",
        "analytics",
        "funnel",
        "crowd steps",
        "hit ratio",
        "health events",
        "health now",
        "failures",
        "took",
    ):
        assert heading in lines, (heading, report)
    failed = re.match(
        r"(\d+) \(5xx or transport errors seen by clients\): (\d+) GET, (\d+) POST", lines["errors"]
    )
    assert failed is not None, lines["errors"]
    assert int(failed.group(1)) == int(failed.group(2)) + int(failed.group(3))
    orders = re.match(r"(\d+), revenue ([\d.]+) EUR", lines["orders"])
    assert orders is not None, lines["orders"]
    assert int(orders.group(1)) > 0
    assert float(orders.group(2)) > 0
    assert re.match(r"\d+% at the edge", lines["hit ratio"]), lines["hit ratio"]
    assert re.search(r"app-2 [^;]*(down|ejected) [1-9]", lines["health events"]), report
    assert lines["health now"] == "app-1 up, app-2 up", report  # the fleet recovered
    for what in ("kill app-2", "origin down", "restart app-2", "origin up"):
        assert what in lines["failures"], report
    hits = re.search(r"\((\d+) hits", lines["hit ratio"])
    assert hits is not None
    assert int(hits.group(1)) > 0, report
    # The funnel is commercekit.analytics' over the events the shop emitted, after the
    # consumer caught up: every order in the database counted once, and each step's
    # unique customers as the raw event log gives them.
    db_orders = _rows(
        f"sqlite:///{tmp_path / 'shop.db'}", "SELECT customer_id, anonymous_id FROM ck_orders"
    )
    guests = {a for c, a in db_orders if c is None and a is not None}
    analytics = ANALYTICS.match(lines["analytics"])
    assert analytics is not None, lines["analytics"]
    counted, in_db, by_guests = (int(g) for g in analytics.groups())
    assert counted == in_db == len(db_orders) > 0, report
    assert by_guests == len(guests)
    funnel = FUNNEL.match(lines["funnel"])
    assert funnel is not None, lines["funnel"]
    viewed, added, _, started, _, completed, _, overall, _ = (float(g) for g in funnel.groups())
    assert [viewed, added, started, completed] == _reference_funnel(tmp_path / "events.db")
    # a buyer who signed in counts too, as one person with their browsing as a guest
    assert 0 < completed <= len({c or a for c, a in db_orders})
    assert abs(overall - 100 * completed / viewed) <= 0.5 + 1e-9
