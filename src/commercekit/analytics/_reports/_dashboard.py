"""Alert rules and a Grafana dashboard as files a shop imports.

``rules_file()`` is the shipped Prometheus rules file (recording rules, SRE
workbook multi-window burn-rate alerts, analytics alerts); ``dashboard_file()``
the shipped Grafana dashboard, which :func:`dashboard_from_catalogue`
generates from the metrics catalogue (the tables of ``docs/metrics.md``):
one row per part, one panel per metric (counters as rates, gauges as they
are, histograms as p50/p99).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from commercekit.errors import InvalidInputError

__all__ = ["dashboard_file", "dashboard_from_catalogue", "rules_file"]

_RULES = Path(__file__).parent.parent / "rules"
_ROW = re.compile(r"^\|\s*`(commercekit_[a-z0-9_]+)`\s*\|\s*(counter|gauge|histogram)\s*\|(.*)$")


def rules_file() -> Path:
    """The Prometheus rules shipped with commercekit (``promtool check rules`` passes)."""
    return _RULES / "commercekit.rules.yml"


def dashboard_file() -> Path:
    """The Grafana dashboard JSON shipped with commercekit."""
    return _RULES / "grafana-dashboard.json"


def _tags(rest: str) -> list[str]:
    cells = [c.strip() for c in rest.split("|")]
    # Catalogue rows are "unit | tags | meaning" (docs/metrics.md) or "tags | meaning".
    tag_cell = cells[1] if len(cells) > 3 else cells[0]
    return re.findall(r"`([a-z_]+)`(?![^(]*\))", tag_cell)


def _panel(pid: int, name: str, kind: str, tags: list[str], x: int, y: int) -> dict[str, Any]:
    by = f" by ({', '.join(tags)})" if tags else ""
    if kind == "counter":
        targets = [f"sum{by} (rate({name}[$__rate_interval]))"]
    elif kind == "gauge":
        targets = [f"sum{by} ({name})"]
    else:
        by_le = ", ".join(["le", *tags])
        targets = [
            f"histogram_quantile({q}, sum by ({by_le}) (rate({name}_bucket[$__rate_interval])))"
            for q in ("0.5", "0.99")
        ]
    return {
        "id": pid,
        "type": "timeseries",
        "title": name.removeprefix("commercekit_"),
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 8, "x": x, "y": y},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": "__auto"}
            for i, expr in enumerate(targets)
        ],
        "fieldConfig": {
            "defaults": {"unit": "s" if kind == "histogram" else "short"},
            "overrides": [],
        },
    }


def dashboard_from_catalogue(markdown: str) -> dict[str, Any]:
    """A Grafana dashboard (JSON model) with a panel for each metric row in *markdown*."""
    parts: list[tuple[str, list[tuple[str, str, list[str]]]]] = []
    for line in markdown.splitlines():
        if line.startswith("### "):
            parts.append((line[4:].split("(")[0].strip(), []))
            continue
        m = _ROW.match(line.strip())
        if m and parts:
            parts[-1][1].append((m.group(1), m.group(2), _tags(m.group(3))))
    parts = [(title, rows) for title, rows in parts if rows]
    if not parts:
        raise InvalidInputError(
            "no metric tables found (rows like | `commercekit_x` | counter | ...)"
        )
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for title, rows in parts:
        panels.append(
            {"id": pid, "type": "row", "title": title, "collapsed": False,
             "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []}
        )  # fmt: skip
        pid, y = pid + 1, y + 1
        for i, (name, kind, tags) in enumerate(rows):
            panels.append(_panel(pid, name, kind, tags, (i % 3) * 8, y + (i // 3) * 8))
            pid += 1
        y += ((len(rows) + 2) // 3) * 8
    return {
        "title": "commercekit",
        "uid": "commercekit-overview",
        "tags": ["commercekit"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                }
            ]
        },
        "panels": panels,
    }
