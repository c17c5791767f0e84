"""Traces: one request's unit of work, payment call and CDN origin fetch form one trace.

The OpenTelemetry SDK's global tracer provider can be set once per process, so
the traced request runs in a child interpreter (once for this module) and
prints its spans as JSON.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from commercekit.metrics import (
    TraceContext,
    current_traceparent,
    format_traceparent,
    parse_traceparent,
    routed_request_span,
    span,
)

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, tempfile
    from pathlib import Path
    import sqlalchemy as sa
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from commercekit.metrics import (
        current_traceparent, refresh_tracing, routed_request_span, span, traced,
    )
    from commercekit.cdn import DirectoryOrigin, EdgeCache, MemoryStore
    from commercekit.money import Money
    from commercekit.payments import Card, PaymentService, SandboxGateway
    from commercekit.payments import SqlAlchemyIdempotencyStore
    from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine

    @traced("price_lookup", attributes={"commercekit.sku": "TEE"})
    def price_lookup(sku):
        "Look a price up."
        return 500

    @traced("reserve_stock", kind="client")
    async def reserve_stock(sku):
        await asyncio.sleep(0)
        return price_lookup(sku)  # a traced call inside a traced coroutine

    @traced("refund_lookup")
    def refund_lookup():
        raise KeyError("no such refund")

    @traced("late")
    def late():
        return None

    with span("before any provider"):  # decides "nothing records" ...
        pass
    late()  # decorated and first called before any provider: looks, finds none
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    for _ in range(300):  # noticed without refresh_tracing(), within a few hundred calls
        late()
    late_spans = len([s for s in exporter.get_finished_spans() if s.name == "late"])
    exporter.clear()
    assert refresh_tracing()  # ... until told to look again
    folder = Path(tempfile.mkdtemp())
    db = Database(ReplicatedTopology(Node("primary", sqlite_engine(folder / "shop.db"))))
    store = SqlAlchemyIdempotencyStore(sa.create_engine(f"sqlite:///{folder / 'pay.db'}"))
    store.create_tables()
    payments = PaymentService(SandboxGateway(), store)
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with span("POST /checkout", kind="server", traceparent=incoming):
        outgoing = current_traceparent()
        with db.unit_of_work() as uow:
            uow.session.execute(sa.text("SELECT 1"))
        payments.authorize("order-1", Money.of("5.00", "EUR"), Card("4242424242424242", 12, 2030))
        with routed_request_span("GET", "/p/1", node="app-2", address="127.0.0.1", port=8002) as h:
            forwarded = h
        assert price_lookup("TEE") == 500
        assert asyncio.run(reserve_stock("TEE")) == 500
        (folder / "img").mkdir()
        (folder / "img" / "shoe.jpg").write_bytes(b"a picture of a shoe")

        async def image():
            async with EdgeCache(DirectoryOrigin(folder / "img"), MemoryStore(1 << 20)) as edge:
                got = await edge.get("https://img.shop.example/shoe.jpg?sig=s3cret")
                return got.status

        assert asyncio.run(image()) == 200
        try:
            refund_lookup()
        except KeyError:
            pass
        else:
            raise AssertionError("the traced function's exception was swallowed")
    out = []
    for s in exporter.get_finished_spans():
        out.append({
            "name": s.name, "trace": s.context.trace_id, "id": s.context.span_id,
            "parent": s.parent.span_id if s.parent else None, "kind": s.kind.name,
            "attributes": dict(s.attributes), "status": s.status.status_code.name,
            "events": [[e.name, dict(e.attributes or {})] for e in s.events],
        })
    print(json.dumps({
        "spans": out, "outgoing": outgoing, "forwarded": forwarded, "late_spans": late_spans,
        "wrapped": [price_lookup.__name__, price_lookup.__doc__, reserve_stock.__name__],
    }))
    """
)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """The spans of one traced request, from a child interpreter with the SDK."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    decoded: dict[str, Any] = json.loads(result.stdout)
    return decoded


def test_a_request_is_one_trace_with_correct_parents(report: dict[str, Any]) -> None:
    spans = {s["name"]: s for s in report["spans"]}
    root, uow, pay = spans["POST /checkout"], spans["unit_of_work"], spans["payment_gateway"]
    trace_id = 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert {s["trace"] for s in report["spans"]} == {trace_id}  # continues the proxy's trace
    assert root["parent"] == 0x00F067AA0BA902B7
    assert uow["parent"] == root["id"]
    assert pay["parent"] == root["id"]
    assert uow["attributes"]["db.system"] == "sqlite"
    assert (uow["kind"], pay["kind"]) == ("CLIENT", "CLIENT")
    assert pay["attributes"]["commercekit.payment.operation"] == "authorize"
    outgoing = parse_traceparent(report["outgoing"])
    assert outgoing is not None
    assert (outgoing.trace_id, outgoing.span_id) == (trace_id, root["id"])
    assert "before any provider" not in spans
    fetch = spans["origin_fetch"]  # the CDN edge asking its origin, in the request's trace
    assert (fetch["kind"], fetch["trace"]) == ("CLIENT", trace_id)
    assert fetch["parent"] == root["id"]
    assert fetch["attributes"] == {"http.request.method": "GET", "url.path": "/shoe.jpg"}
    route = spans["balancer_route"]
    assert (route["parent"], route["kind"]) == (root["id"], "CLIENT")
    assert route["attributes"] == {
        "http.request.method": "GET",
        "url.path": "/p/1",
        "commercekit.balancer.node": "app-2",
        "server.address": "127.0.0.1",
        "server.port": 8002,
    }
    forwarded = parse_traceparent(report["forwarded"])  # the backend's parent is the route span
    assert forwarded is not None
    assert (forwarded.trace_id, forwarded.span_id) == (trace_id, route["id"])


def test_traced_functions_are_spans_of_the_callers_trace(report: dict[str, Any]) -> None:
    """Sync and async ``traced`` functions nest like ``with span(...)`` blocks."""
    root = next(s for s in report["spans"] if s["name"] == "POST /checkout")
    lookups = [s for s in report["spans"] if s["name"] == "price_lookup"]
    (reserve,) = (s for s in report["spans"] if s["name"] == "reserve_stock")
    assert {s["trace"] for s in report["spans"]} == {root["trace"]}
    assert sorted(s["parent"] for s in lookups) == sorted([root["id"], reserve["id"]])
    assert reserve["parent"] == root["id"]  # asyncio.run's task carries the caller's context
    assert (reserve["kind"], lookups[0]["kind"]) == ("CLIENT", "INTERNAL")
    assert lookups[0]["attributes"] == {"commercekit.sku": "TEE"}
    assert report["wrapped"] == ["price_lookup", "Look a price up.", "reserve_stock"]


def test_an_exception_leaving_a_traced_function_is_recorded_with_an_error_status(
    report: dict[str, Any],
) -> None:
    (failed,) = (s for s in report["spans"] if s["name"] == "refund_lookup")
    assert failed["status"] == "ERROR"
    ((event, attributes),) = failed["events"]
    assert event == "exception"
    assert attributes["exception.type"] == "KeyError"
    assert "no such refund" in attributes["exception.message"]


def test_a_provider_set_after_decoration_is_noticed(report: dict[str, Any]) -> None:
    """Decorated and called before the provider was set; 300 calls after it, then recorded.

    Each function looks again every 256 calls while none is set, so at least
    the last 44 of the 300 calls recorded.
    """
    assert 300 - 256 <= report["late_spans"] < 300


def test_traceparent_round_trips_and_rejects_malformed_headers() -> None:
    ctx = TraceContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, sampled=True)
    header = format_traceparent(ctx)
    assert header == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert parse_traceparent(header) == ctx
    assert parse_traceparent(header[:-2] + "00") == TraceContext(ctx.trace_id, ctx.span_id, False)
    for bad in (
        None,
        "",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "x" * 600,
    ):
        assert parse_traceparent(bad) is None, bad


def test_without_a_provider_a_span_is_one_shared_no_op() -> None:
    """No provider here: every span is the same object, and exceptions pass through it.

    What it costs beside an empty call is measured by benchmarks/analytics.py.
    """
    assert current_traceparent() is None
    assert span("a") is span("b", kind="client", attributes={"db.system": "sqlite"})
    with span("x") as value:
        assert value is None
    with pytest.raises(KeyError), span("x"):
        raise KeyError("passes through")
    with contextlib.ExitStack() as stack:  # entered the way ExitStack and AsyncExitStack do
        assert stack.enter_context(span("x")) is None
    stack = contextlib.ExitStack()
    stack.enter_context(span("x"))
    assert stack.__exit__(KeyError, KeyError("passes through"), None) is False


def test_a_proxy_that_does_not_trace_forwards_a_valid_traceparent_unchanged() -> None:
    header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with routed_request_span("GET", "/", node="app-1", traceparent=header) as forwarded:
        assert forwarded == header
    with routed_request_span("GET", "/", node="app-1", traceparent="junk") as forwarded:
        assert forwarded is None
    with routed_request_span("GET", "/", node="app-1") as forwarded:
        assert forwarded is None
