"""A unit of work's span names the node that served it: role and name, after a fail-over too.

The OpenTelemetry SDK's global tracer provider can be set once per process, so
the traced units of work run in a child interpreter (once for this module),
sync and asyncio, and it prints their spans as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import sqlalchemy as sa

from commercekit.repository import Node, Role
from commercekit.repository._runtime._spans import node_span_attributes

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, tempfile
    from pathlib import Path
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from commercekit.metrics import refresh_tracing, span
    from tests.repository.fakes import Outage
    from tests.repository.models import Customer
    from tests.repository.test_asyncio import _replicated
    from tests.repository.test_database import make_group, write
    from tests.repository import models

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    assert refresh_tracing()

    def spans():
        out = [
            {"name": s.name, "attributes": dict(s.attributes), "id": s.context.span_id,
             "parent": s.parent.span_id if s.parent else None}
            for s in exporter.get_finished_spans()
        ]
        exporter.clear()
        return out

    report = {}
    g = make_group(Path(tempfile.mkdtemp()))
    write(g, 1)
    g.replicate()
    g.db.probe()
    with g.db.unit_of_work(read_only=True, key="session-1") as uow:
        uow.repository(Customer).require(1)
    lost = uow.node
    report["sync_plain"] = spans()
    Outage(next(r.engine for r in g.topology.replicas if r.name == lost)).on = True
    with g.db.unit_of_work(read_only=True, key="session-1") as uow:
        with span("inner"):  # a span nested in the work is current when it fails over
            uow.repository(Customer).require(1)
    report["sync_lost"], report["sync_served"] = lost, uow.node
    report["sync_fail_over"] = spans()

    async def main():
        db, outages = _replicated(Path(tempfile.mkdtemp()))
        await db.probe()
        async with db.unit_of_work() as uow:
            await uow.session.execute(models.Customer.__table__.select())
        async with db.unit_of_work(read_only=True, key="session-1") as uow:
            await uow.repository(models.Customer).require(1)
        lost = uow.node
        report["async_plain"] = spans()
        outages[lost].on = True
        async with db.unit_of_work(read_only=True, key="session-1") as uow:
            await uow.repository(models.Customer).require(1)
        report["async_lost"], report["async_served"] = lost, uow.node
        report["async_fail_over"] = spans()
        await db.dispose()

    asyncio.run(main())
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    decoded: dict[str, Any] = json.loads(result.stdout)
    return decoded


def _work(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s["attributes"] for s in spans if s["name"] == "unit_of_work"]


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_the_span_names_the_role_and_node_that_served_the_work(
    report: dict[str, Any], flavour: str
) -> None:
    works = _work(report[f"{flavour}_plain"])
    reads = [w for w in works if w["commercekit.read_only"]]
    writes = [w for w in works if not w["commercekit.read_only"]]
    assert writes or flavour == "sync"  # the sync write ran before the first report
    for w in writes:
        assert (w["commercekit.db.role"], w["commercekit.db.node"]) == ("primary", "primary")
    (read,) = reads
    assert read["db.system"] == "sqlite"
    assert read["commercekit.db.role"] == "replica"
    assert read["commercekit.db.node"] == report[f"{flavour}_lost"]
    assert "server.address" not in read  # SQLite: a file, no server


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_after_a_fail_over_the_span_names_the_node_that_served_it(
    report: dict[str, Any], flavour: str
) -> None:
    lost, served = report[f"{flavour}_lost"], report[f"{flavour}_served"]
    assert lost != served
    spans = report[f"{flavour}_fail_over"]
    (work,) = _work(spans)
    assert work["commercekit.db.role"] == "replica"
    assert work["commercekit.db.node"] == served
    if flavour == "sync":  # the nested span stayed as it was; the work's span was told
        (inner,) = (s for s in spans if s["name"] == "inner")
        (outer,) = (s for s in spans if s["name"] == "unit_of_work")
        assert inner["parent"] == outer["id"]
        assert inner["attributes"] == {}


def test_a_server_nodes_span_attributes_name_its_address() -> None:
    engine = sa.create_engine("postgresql+psycopg://shop@db-2.internal:5433/shop")
    try:
        attributes = node_span_attributes(Node("replica-2", engine), Role.REPLICA)
        assert dict(attributes) == {
            "commercekit.db.role": "replica",
            "commercekit.db.node": "replica-2",
            "server.address": "db-2.internal",
            "server.port": 5433,
        }
        assert node_span_attributes(Node("replica-2", engine), Role.REPLICA) is attributes
    finally:
        engine.dispose()
