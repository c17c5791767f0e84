"""``python -m shop demo --once`` (``make demo``'s command): the fleet, a crowd, failures, a report.

A shorter crowd than the default 45 s, with the same plan: app-2 SIGKILLed
and started again, the image origin down for a while. Its own fleet, data
folder and ports, so the package's fleet is not disturbed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.shop._procs import EXAMPLES, free_port, shop_env


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
        "funnel",
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
