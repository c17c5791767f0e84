"""Checkout steps as OpenTelemetry spans: one span per saga step, inside the caller's trace.

The SDK's global tracer provider can be set once per process, so the checkout
runs in a child interpreter that prints its finished spans as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the OpenTelemetry SDK is not installed")

SCRIPT = textwrap.dedent(
    """
    import json, tempfile
    from pathlib import Path
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from commercekit.metrics import refresh_tracing, span
    from tests.commerce._shop import GOOD, cart_with, make_shop
    from commercekit.commerce import metadata
    from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    refresh_tracing()
    engine = sqlite_engine(Path(tempfile.mkdtemp()) / "shop.db")
    db = Database(ReplicatedTopology(Node("primary", engine)))
    db.create_all(metadata)
    shop, _, _ = make_shop(db)
    cart_id = cart_with(shop, {"TEE": 1})
    exporter.clear()
    with span("POST /checkout", kind="server"):
        result = shop.checkout.place(cart_id, GOOD, region="DE")
    print(json.dumps({
        "checkout_id": result.checkout_id,
        "spans": [
            {"name": s.name, "trace": s.context.trace_id, "id": s.context.span_id,
             "parent": s.parent.span_id if s.parent else None, "attributes": dict(s.attributes)}
            for s in exporter.get_finished_spans()
        ],
    }))
    """
)


def test_each_checkout_step_is_one_span_of_the_callers_trace() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    spans = report["spans"]
    root = next(s for s in spans if s["name"] == "POST /checkout")
    steps = [s for s in spans if s["name"].startswith("checkout ")]
    names = [s["name"] for s in steps]
    for step in ("snapshot", "reserve", "authorize", "place_order", "capture", "complete_cart"):
        assert names.count(f"checkout {step}") == 1, names
    assert {s["trace"] for s in spans} == {root["trace"]}
    ids = {s["id"]: s for s in spans}
    for s in steps:
        assert s["attributes"]["commercekit.checkout.id"] == report["checkout_id"]
        # a step is the caller's child, or nested in a unit of work that is
        parent = ids[s["parent"]]
        assert parent["id"] == root["id"] or ids[parent["parent"]]["id"] == root["id"]
