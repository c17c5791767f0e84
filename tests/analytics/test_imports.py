"""Importing the analytics part loads no SQLAlchemy dialect: each comes with its first statement.

A dialect package costs tens of milliseconds of every process's start (a CLI,
a worker, a test run), so each is imported when a statement or a column type
needs it, and then only the one in use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DIALECTS = {"mysql", "postgresql", "sqlite"}

LOADED = """
import json, sys
print(json.dumps(sorted({
    m.split(".")[2] for m in sys.modules if m.startswith("sqlalchemy.dialects.")
})))
"""


def dialects_after(code: str) -> set[str]:
    """The dialect packages a fresh interpreter holds after running *code*."""
    out = subprocess.run(
        [sys.executable, "-c", code + LOADED],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(out.stdout)) & DIALECTS


def test_importing_analytics_loads_no_dialect() -> None:
    assert dialects_after("import commercekit.analytics") == set()


def test_consuming_on_sqlite_loads_sqlites_dialect_only(tmp_path: Path) -> None:
    code = f"""
from commercekit.analytics import (
    AnalyticsConsumer, AnalyticsStore, LogRecord, SqlEventLog, product_viewed,
)
from commercekit.money import Money
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine

engine = sqlite_engine({str(tmp_path / "a.db")!r})
store = AnalyticsStore(Database(ReplicatedTopology(Node("p", engine))))
store.create()
log = SqlEventLog(engine)
log.create()
event = product_viewed("tee", Money.of("1.00", "EUR"), customer_id="c")
log.publish([LogRecord(event.event_id, event.to_bytes())])
assert AnalyticsConsumer(log, store, poll_timeout_s=0).run(idle_exit_s=0) == 1
"""
    assert dialects_after(code) == {"sqlite"}
