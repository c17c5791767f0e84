"""Every metric the analytics part emits is in the catalogue (docs/metrics.md), and no more.

The instruments are read from a consumer and a relay built on an in-memory
backend (name, kind and tag names as registered), and the metric names from
the part's source, so a metric added without its catalogue row fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from commercekit.analytics import AnalyticsConsumer, AnalyticsStore, JsonLinesLog, OutboxRelay
from commercekit.metrics import InMemoryMetrics
from commercekit.repository import Database, Node, Outbox, ReplicatedTopology, sqlite_engine

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCE = ROOT / "src" / "commercekit" / "analytics"
ROW = re.compile(
    r"^\| `(commercekit_[a-z0-9_]+)` \| (counter|gauge|histogram) \| [^|]* \| ([^|]*) \|", re.M
)


def catalogue(part: str | None = None) -> dict[str, tuple[str, frozenset[str]]]:
    """The rows of docs/metrics.md's section *part* (all parts when None): name -> (kind, tags)."""
    text = (ROOT / "docs" / "metrics.md").read_text().split("\n## Catalogue\n", 1)[1]
    section = text if part is None else text.split(f"\n### {part}\n", 1)[1].split("\n### ")[0]
    return {
        name: (kind, frozenset(re.findall(r"`([a-z_]+)`", tags)))
        for name, kind, tags in ROW.findall(section)
    }


def emitted(tmp_path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """What a consumer and a relay register: name -> (kind, tag names)."""
    metrics = InMemoryMetrics()
    db = Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db"))))
    log = JsonLinesLog(tmp_path / "events.jsonl")
    AnalyticsConsumer(log, AnalyticsStore(db), metrics=metrics)
    OutboxRelay(db, Outbox(), log, metrics=metrics)
    snap = metrics.snapshot()
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for kind, series in (
        ("counter", snap.counters),
        ("gauge", snap.gauges),
        ("histogram", snap.histograms),
    ):
        for name, tags in series:
            if name.startswith("commercekit_analytics_"):
                out[name] = (kind, frozenset(k for k, _ in tags))
    return out


def test_every_metric_the_analytics_part_emits_is_catalogued(tmp_path: Path) -> None:
    rows = catalogue("analytics")
    assert emitted(tmp_path) == rows


def test_every_metric_name_in_the_analytics_source_is_catalogued() -> None:
    rows = catalogue("analytics")
    names: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r"commercekit_analytics_[a-z0-9_]+", text))
        if 'P = "commercekit_analytics_"' in text:  # names built as f"{P}..."
            names |= {f"commercekit_analytics_{n}" for n in re.findall(r'f"\{P\}(\w+)"', text)}
    names.discard("commercekit_analytics_")  # the prefix itself
    assert names
    assert names <= set(rows), sorted(names - set(rows))


def test_the_shipped_rules_use_catalogued_metrics_only() -> None:
    from commercekit.analytics import rules_file

    names = set(catalogue())
    used = set(re.findall(r"\bcommercekit_[a-z0-9_]+", rules_file().read_text()))
    used = {re.sub(r"_(bucket|count|sum)$", "", n) for n in used}
    assert used
    assert used <= names, sorted(used - names)
