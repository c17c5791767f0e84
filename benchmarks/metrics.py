"""Benchmark of the metrics hook: cost per call beside its peers, and quantile accuracy.

Prints, from one run, the nanoseconds per call of commercekit's instruments
beside ``prometheus_client`` and the OpenTelemetry SDK measured in the same
run, with the ratios and the targets, then the relative error of our quantile
sketch and of Prometheus' default buckets against the exact quantiles of one
seeded set of lognormal latencies::

    .venv/bin/python benchmarks/metrics.py            # the tables
    .venv/bin/python benchmarks/metrics.py --json     # the same figures as one JSON object
    .venv/bin/python benchmarks/metrics.py --quick    # a fast smoke run (rougher figures)

How the costs are taken, so that noise from other jobs hits both sides alike:
each case is a bound method called in a ``for`` loop over a preallocated list,
timed with ``time.perf_counter_ns``, with the garbage collector off. Every
case has a loop function of its own, compiled from a template as ``timeit``
does, so CPython's specialising interpreter never sees two callables at one
call site. All cases are timed once per round, ours and peers interleaved, in
an order that reverses every round; a case's figure is its fastest round, less
the fastest round of the empty loop.

The script reports; it does not fail when a target is missed (read the
``meets_*`` keys of ``--json`` for that).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import _harness  # benchmarks/_harness.py, beside this script
import attrs
import prometheus_client
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from commercekit.metrics import (
    InMemoryMetrics,
    NullMetrics,
    OpenTelemetryMetrics,
    PrometheusMetrics,
)

SEED = 20240611
TAGS = {"route": "/cart", "method": "GET"}
LATENCY_MEDIAN_S = 0.050
LATENCY_SIGMA = 1.0
QUANTILES = (0.5, 0.9, 0.99, 0.999)

# The targets, each the largest ratio (ours / peer) or relative error allowed.
TARGET_DISABLED_COUNTER = 1.5  # NullMetrics .inc() / an empty method call
TARGET_ENABLED_COUNTER = 0.5  # InMemoryMetrics .inc() / prometheus_client Counter.inc()
TARGET_HISTOGRAM_RECORD = 0.7  # InMemoryMetrics .record(v) / prometheus_client .observe(v)
TARGET_TAGGED_LOOKUP = 1.0  # metrics.counter(name, tags=...).inc() / .labels(**tags).inc()
TARGET_QUANTILE_ERROR = 0.01  # the sketch's relative error, at each of QUANTILES


@attrs.frozen
class Settings:
    """How long to measure: the full run, or the quick smoke run."""

    rounds: int
    loop_target_ns: int  # each timed loop is sized to take about this long
    max_loop: int  # ... but runs at most this many iterations
    samples: int  # lognormal latencies for the quantile comparison


FULL = Settings(rounds=40, loop_target_ns=15_000_000, max_loop=1_000_000, samples=1_000_000)
QUICK = Settings(rounds=3, loop_target_ns=1_000_000, max_loop=50_000, samples=50_000)


# --- timing ------------------------------------------------------------------------------

Loop = Callable[[Sequence[float], Callable[..., Any], Any], int]

_LOOP_TEMPLATE = """
def loop(items, fn, arg, _clock=_clock):
    start = _clock()
    for {var} in items:
        {body}
    return _clock() - start
"""

# The loop bodies, by shape: the loop variable and the statement run per item.
_BODIES = {
    "empty": ("_", "pass"),
    "call": ("_", "fn()"),
    "one": ("_", "fn(1)"),
    "one_attrs": ("_", "fn(1, arg)"),
    "value": ("value", "fn(value)"),
    "timed": ("_", "with fn():\n            pass"),
    # The instrument looked up on every call, as handlers write it: ours, and the peer's.
    "lookup": ("_", 'fn("bench_looked_up_total", description="Requests.", tags=arg).inc()'),
    "labels": ("_", "fn(**arg).inc()"),
}


def compile_loop(shape: str, name: str) -> Loop:
    """A new loop function of *shape* (a key of ``_BODIES``), with a code object of its own."""
    var, body = _BODIES[shape]
    namespace: dict[str, Any] = {"_clock": time.perf_counter_ns}
    code = compile(_LOOP_TEMPLATE.format(var=var, body=body), f"<loop {name}>", "exec")
    exec(code, namespace)
    loop: Loop = namespace["loop"]
    return loop


@attrs.define
class Case:
    """One thing timed: *fn* called in a loop of *shape*, with *arg* where the shape takes one."""

    key: str
    label: str
    shape: str
    fn: Callable[..., Any]
    arg: Any = None
    loop: Loop | None = None
    items: list[float] = attrs.field(factory=list, repr=False)
    rounds_ns: list[float] = attrs.field(factory=list, repr=False)

    def prepare(self, values: Sequence[float], settings: Settings) -> None:
        """Compile and warm the loop, and size it to take about ``loop_target_ns``."""
        self.loop = compile_loop(self.shape, self.key)
        probe = list(values[:2000])
        estimate = min(self.loop(probe, self.fn, self.arg) for _ in range(5)) / len(probe)
        n = int(settings.loop_target_ns / max(estimate, 1.0))
        n = max(len(probe), min(n, settings.max_loop))
        self.items = (list(values) * -(-n // len(values)))[:n]

    def run(self) -> None:
        """Time one loop, and keep its nanoseconds per iteration."""
        assert self.loop is not None
        elapsed_ns = self.loop(self.items, self.fn, self.arg)
        self.rounds_ns.append(elapsed_ns / len(self.items))


class _Empty:
    __slots__ = ()

    def method(self) -> None:
        pass


@attrs.frozen
class Costs:
    """Nanoseconds per call of every case, the empty loop's cost already taken off."""

    rounds: int
    empty_loop_ns: float
    best_ns: dict[str, float]  # the fastest round
    median_ns: dict[str, float]  # the median round, to show how noisy the run was
    labels: dict[str, str]


def build_cases(peer_provider: MeterProvider, ours_provider: MeterProvider) -> list[Case]:
    """Every call timed; ours and the peer it is compared with sit side by side."""
    memory = InMemoryMetrics()
    disabled = NullMetrics().counter("bench_requests_total", description="Requests.")
    enabled = memory.counter("bench_requests_total", description="Requests.")
    tagged = memory.counter("bench_routed_requests_total", description="Requests.", tags=TAGS)
    histogram = memory.histogram("bench_latency_seconds", description="Latency.")

    registry = prometheus_client.CollectorRegistry()
    p_counter = prometheus_client.Counter("bench_requests", "Requests.", registry=registry)
    p_labelled = prometheus_client.Counter(
        "bench_routed_requests", "Requests.", list(TAGS), registry=registry
    ).labels(**TAGS)
    p_looked_up = prometheus_client.Counter(
        "bench_looked_up", "Requests.", list(TAGS), registry=registry
    )
    p_histogram = prometheus_client.Histogram(
        "bench_latency_seconds", "Latency.", registry=registry
    )

    meter = peer_provider.get_meter("bench")
    o_counter = meter.create_counter("bench_requests_total")
    o_histogram = meter.create_histogram("bench_latency_seconds", unit="s")

    ours_prom = PrometheusMetrics()
    prom_counter = ours_prom.counter(
        "bench_routed_requests_total", description="Requests.", tags=TAGS
    )
    prom_histogram = ours_prom.histogram("bench_latency_seconds", description="Latency.")
    ours_otel = OpenTelemetryMetrics(ours_provider)
    otel_counter = ours_otel.counter(
        "bench_routed_requests_total", description="Requests.", tags=TAGS
    )
    otel_histogram = ours_otel.histogram("bench_latency_seconds", description="Latency.")

    return [
        Case("empty_method_call", "empty method call", "call", _Empty().method),
        Case("disabled_counter", "NullMetrics .inc()", "call", disabled.inc),
        Case("enabled_counter", "InMemoryMetrics .inc()", "call", enabled.inc),
        Case("prometheus_counter_inc", "prometheus Counter.inc()", "call", p_counter.inc),
        Case("otel_counter_add", "OTel counter.add(1)", "one", o_counter.add),
        Case("tagged_counter", "InMemoryMetrics tagged .inc()", "call", tagged.inc),
        Case("prometheus_labelled_inc", "prometheus .labels(..).inc()", "call", p_labelled.inc),
        Case(
            "otel_counter_add_attrs", "OTel counter.add(1, attrs)", "one_attrs", o_counter.add, TAGS
        ),
        Case("tagged_lookup", "InMemoryMetrics .counter(..).inc()", "lookup", memory.counter, TAGS),
        Case(
            "prometheus_labels_lookup",
            "prometheus .labels(**t).inc()",
            "labels",
            p_looked_up.labels,
            TAGS,
        ),
        Case(
            "prometheus_backend_lookup",
            "PrometheusMetrics .counter(..).inc()",
            "lookup",
            ours_prom.counter,
            TAGS,
        ),
        Case("histogram_record", "InMemoryMetrics .record(v)", "value", histogram.record),
        Case("prometheus_observe", "prometheus Histogram.observe(v)", "value", p_histogram.observe),
        Case("otel_histogram_record", "OTel histogram.record(v)", "value", o_histogram.record),
        Case("timed_block", "InMemoryMetrics with .time()", "timed", histogram.time),
        Case("prometheus_time", "prometheus with Histogram.time()", "timed", p_histogram.time),
        Case(
            "prometheus_backend_counter",
            "PrometheusMetrics tagged .inc()",
            "call",
            prom_counter.inc,
        ),
        Case(
            "prometheus_backend_record",
            "PrometheusMetrics .record(v)",
            "value",
            prom_histogram.record,
        ),
        Case(
            "prometheus_backend_timed_block",
            "PrometheusMetrics with .time()",
            "timed",
            prom_histogram.time,
        ),
        Case(
            "otel_backend_counter", "OpenTelemetryMetrics tagged .inc()", "call", otel_counter.inc
        ),
        Case(
            "otel_backend_record", "OpenTelemetryMetrics .record(v)", "value", otel_histogram.record
        ),
    ]


def measure_costs(settings: Settings) -> Costs:
    """Time every case, round-robin, and return the per-call costs."""
    values = latencies(4096, SEED + 1)  # a histogram's inputs; few, so they stay in cache
    peer_provider = MeterProvider(metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False)
    ours_provider = MeterProvider(metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False)
    try:
        empty_loop = Case("empty_loop", "empty loop", "empty", _Empty().method)
        cases = [empty_loop, *build_cases(peer_provider, ours_provider)]
        for case in cases:
            case.prepare(values, settings)
        gc.collect()
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for round_ in range(settings.rounds):
                for case in cases if round_ % 2 == 0 else reversed(cases):
                    case.run()
        finally:
            if gc_was_enabled:
                gc.enable()
    finally:
        peer_provider.shutdown()
        ours_provider.shutdown()
    empty_ns = min(empty_loop.rounds_ns)
    empty_median_ns = statistics.median(empty_loop.rounds_ns)
    timed = cases[1:]
    return Costs(
        rounds=settings.rounds,
        empty_loop_ns=empty_ns,
        best_ns={c.key: max(min(c.rounds_ns) - empty_ns, 0.0) for c in timed},
        median_ns={
            c.key: max(statistics.median(c.rounds_ns) - empty_median_ns, 0.0) for c in timed
        },
        labels={c.key: c.label for c in timed},
    )


@attrs.frozen
class Comparison:
    """A row of the table: our case against a peer's, and the largest ratio allowed."""

    key: str
    title: str
    ours: str
    peer: str
    target: float | None = None


COMPARISONS = (
    Comparison(
        "disabled_counter",
        "disabled counter",
        "disabled_counter",
        "empty_method_call",
        TARGET_DISABLED_COUNTER,
    ),
    Comparison(
        "enabled_counter",
        "enabled counter",
        "enabled_counter",
        "prometheus_counter_inc",
        TARGET_ENABLED_COUNTER,
    ),
    Comparison("enabled_counter_vs_otel", "enabled counter", "enabled_counter", "otel_counter_add"),
    Comparison("tagged_counter", "tagged counter", "tagged_counter", "prometheus_labelled_inc"),
    Comparison(
        "tagged_lookup",
        "tagged lookup each call",
        "tagged_lookup",
        "prometheus_labels_lookup",
        TARGET_TAGGED_LOOKUP,
    ),
    Comparison(
        "prometheus_backend_lookup",
        "our Prometheus backend",
        "prometheus_backend_lookup",
        "prometheus_labels_lookup",
    ),
    Comparison(
        "tagged_counter_vs_otel", "tagged counter", "tagged_counter", "otel_counter_add_attrs"
    ),
    Comparison(
        "histogram_record",
        "histogram record",
        "histogram_record",
        "prometheus_observe",
        TARGET_HISTOGRAM_RECORD,
    ),
    Comparison(
        "histogram_record_vs_otel", "histogram record", "histogram_record", "otel_histogram_record"
    ),
    Comparison("timed_block", "timed block", "timed_block", "prometheus_time"),
    Comparison(
        "prometheus_backend_counter",
        "our Prometheus backend",
        "prometheus_backend_counter",
        "prometheus_labelled_inc",
    ),
    Comparison(
        "prometheus_backend_record",
        "our Prometheus backend",
        "prometheus_backend_record",
        "prometheus_observe",
    ),
    Comparison(
        "prometheus_backend_timed_block",
        "our Prometheus backend",
        "prometheus_backend_timed_block",
        "prometheus_time",
    ),
    Comparison(
        "otel_backend_counter",
        "our OpenTelemetry backend",
        "otel_backend_counter",
        "otel_counter_add_attrs",
    ),
    Comparison(
        "otel_backend_record",
        "our OpenTelemetry backend",
        "otel_backend_record",
        "otel_histogram_record",
    ),
)


# --- quantile accuracy -------------------------------------------------------------------


def latencies(n: int, seed: int) -> list[float]:
    """*n* lognormal latencies in seconds, median ``LATENCY_MEDIAN_S``, drawn from *seed*."""
    rng = random.Random(seed)
    mu = math.log(LATENCY_MEDIAN_S)
    return [rng.lognormvariate(mu, LATENCY_SIGMA) for _ in range(n)]


def promql_bucket_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """``histogram_quantile(q, ...)`` as PromQL computes it (``bucketQuantile``, quantile.go).

    *buckets* are ``(le, cumulative count)`` pairs ending with ``+Inf``. The rank
    is ``q * count``; within the bucket that holds it the value is interpolated
    linearly (from 0 in the lowest bucket); in the ``+Inf`` bucket the highest
    finite bound is returned.
    """
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]) or ordered[-1][1] == 0:
        return math.nan
    rank = q * ordered[-1][1]
    # The first bucket whose count reaches the rank; sort.Search over all but +Inf.
    b = next((i for i, (_, count) in enumerate(ordered[:-1]) if count >= rank), len(ordered) - 1)
    if b == len(ordered) - 1:
        return ordered[-2][0]
    if b == 0 and ordered[0][0] <= 0:
        return ordered[0][0]
    start, end, count = 0.0, ordered[b][0], ordered[b][1]
    if b > 0:
        start = ordered[b - 1][0]
        count -= ordered[b - 1][1]
        rank -= ordered[b - 1][1]
    return start + (end - start) * (rank / count)


@attrs.frozen
class QuantileRow:
    """One quantile of the samples: exact, from our sketch, and from Prometheus' buckets."""

    q: float
    exact: float
    sketch: float
    prometheus: float

    @property
    def sketch_error(self) -> float:
        return abs(self.sketch - self.exact) / self.exact

    @property
    def prometheus_error(self) -> float:
        return abs(self.prometheus - self.exact) / self.exact


def measure_quantiles(samples: Sequence[float]) -> list[QuantileRow]:
    """Each of ``QUANTILES`` of *samples*: exact, ``InMemoryMetrics``, and PromQL's estimate."""
    metrics = InMemoryMetrics()
    record = metrics.histogram("bench_latency_seconds", description="Latency.").record
    registry = prometheus_client.CollectorRegistry()
    # Histogram's default buckets are prometheus_client.Histogram.DEFAULT_BUCKETS.
    observe = prometheus_client.Histogram(
        "bench_latency_seconds", "Latency.", registry=registry
    ).observe
    for value in samples:
        record(value)
        observe(value)
    distribution = metrics.distribution("bench_latency_seconds")
    buckets = [
        (float(sample.labels["le"]), sample.value)
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name.endswith("_bucket")
    ]
    ordered = sorted(samples)
    return [
        QuantileRow(
            q=q,
            # The rank QuantileSketch.quantile reads: floor(q * (n - 1)), the "lower" quantile.
            exact=ordered[math.floor(q * (len(ordered) - 1))],
            sketch=distribution.quantile(q),
            prometheus=promql_bucket_quantile(q, buckets),
        )
        for q in QUANTILES
    ]


# --- the report --------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were taken on."""
    return _harness.machine("prometheus-client", "opentelemetry-sdk")


def quantile_name(q: float) -> str:
    """``0.999`` as ``p99.9``."""
    return f"p{q * 100:g}"


def build_report(
    settings: Settings, *, quick: bool, costs: Costs, quantiles: list[QuantileRow], took_s: float
) -> dict[str, Any]:
    """Every figure of the run as one JSON-ready object."""
    rows = []
    for c in COMPARISONS:
        ours, peer = costs.best_ns[c.ours], costs.best_ns[c.peer]
        ratio = ours / peer if peer > 0 else None  # no ratio to a peer that cost nothing
        rows.append(
            {
                "case": c.key,
                "title": c.title,
                "ours": costs.labels[c.ours],
                "ours_ns": round(ours, 1),
                "peer": costs.labels[c.peer],
                "peer_ns": round(peer, 1),
                "ratio": None if ratio is None else round(ratio, 3),
                "target": c.target,
                "meets": None if c.target is None else ratio is not None and ratio <= c.target,
            }
        )
    by_case = {row["case"]: row for row in rows}
    worst_sketch_error = max(row.sketch_error for row in quantiles)
    return {
        "benchmark": "metrics",
        "quick": quick,
        "machine": machine(),
        "method": {
            "rounds": costs.rounds,
            "loop_target_ms": settings.loop_target_ns / 1e6,
            "statistic": "fastest round, less the fastest round of the empty loop",
            "empty_loop_ns": round(costs.empty_loop_ns, 2),
            "seconds": round(took_s, 1),
        },
        "ns_per_call": {key: round(ns, 1) for key, ns in costs.best_ns.items()},
        "ns_per_call_median": {key: round(ns, 1) for key, ns in costs.median_ns.items()},
        "comparisons": rows,
        "quantiles": {
            "samples": settings.samples,
            "distribution": (
                f"lognormal, median {LATENCY_MEDIAN_S * 1000:g} ms, sigma {LATENCY_SIGMA:g}, "
                f"seed {SEED}"
            ),
            "prometheus_buckets": list(prometheus_client.Histogram.DEFAULT_BUCKETS[:-1]),
            "target_relative_error": TARGET_QUANTILE_ERROR,
            "rows": {
                quantile_name(row.q): {
                    "exact": row.exact,
                    "sketch": row.sketch,
                    "sketch_relative_error": row.sketch_error,
                    "prometheus": row.prometheus,
                    "prometheus_relative_error": row.prometheus_error,
                }
                for row in quantiles
            },
        },
        "meets_disabled_counter": by_case["disabled_counter"]["meets"],
        "meets_enabled_counter": by_case["enabled_counter"]["meets"],
        "meets_histogram_record": by_case["histogram_record"]["meets"],
        "meets_tagged_lookup": by_case["tagged_lookup"]["meets"],
        "meets_quantile_error": worst_sketch_error <= TARGET_QUANTILE_ERROR,
    }


def _met(meets: bool | None) -> str:
    return "" if meets is None else ("yes" if meets else "NO")


def print_tables(report: dict[str, Any]) -> None:
    """The report as two readable tables."""
    m, method = report["machine"], report["method"]
    print(f"commercekit metrics benchmark{' (--quick: rough figures)' if report['quick'] else ''}")
    print(f"{m['python']} on {m['os']}, {m['cpu']}, {m['cpus']} CPUs")
    print(
        f"prometheus_client {m['prometheus_client']}, opentelemetry-sdk {m['opentelemetry_sdk']}; "
        f"ns per call: fastest of {method['rounds']} interleaved rounds, "
        f"less the empty loop ({method['empty_loop_ns']:.1f} ns)"
    )
    print()
    header = (
        f"{'case':<26} {'ours':<34} {'ns':>7}  {'peer':<32} {'ns':>7}  "
        f"{'ratio':>6}  {'target':>6}  met"
    )
    print(header)
    print("-" * len(header))
    for row in report["comparisons"]:
        target = f"<={row['target']:g}x" if row["target"] is not None else ""
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
        line = (
            f"{row['title']:<26} {row['ours']:<34} {row['ours_ns']:>7.1f}  "
            f"{row['peer']:<32} {row['peer_ns']:>7.1f}  {ratio:>6}  {target:>6}  "
            f"{_met(row['meets'])}"
        )
        print(line.rstrip())
    quantiles = report["quantiles"]
    print()
    print(
        f"quantiles of {quantiles['samples']:,} {quantiles['distribution']}: "
        "relative error against the exact value at rank floor(q*(n-1))"
    )
    header = (
        f"{'quantile':<9} {'exact ms':>10} {'sketch ms':>10} {'error':>7}  "
        f"{'prometheus ms':>13} {'error':>7}  {'target':>6}  met"
    )
    print(header)
    print("-" * len(header))
    target = f"<={quantiles['target_relative_error']:.0%}"
    for name, row in quantiles["rows"].items():
        sketch_error = row["sketch_relative_error"]
        print(
            f"{name:<9} {row['exact'] * 1000:>10.3f} {row['sketch'] * 1000:>10.3f} "
            f"{sketch_error:>7.2%}  {row['prometheus'] * 1000:>13.3f} "
            f"{row['prometheus_relative_error']:>7.2%}  {target:>6}  "
            f"{_met(sketch_error <= quantiles['target_relative_error'])}"
        )
    print(
        "(sketch: InMemoryMetrics histogram, a QuantileSketch at 0.5 %; prometheus: "
        "Histogram.DEFAULT_BUCKETS read with PromQL's histogram_quantile)"
    )
    print()
    targets = {key: value for key, value in report.items() if key.startswith("meets_")}
    print(
        "targets: "
        + ", ".join(f"{key} {_met(value)}" for key, value in targets.items())
        + f"  ({method['seconds']} s)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables, or its JSON with ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run, rough figures")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    started = time.perf_counter()
    costs = measure_costs(settings)
    quantiles = measure_quantiles(latencies(settings.samples, SEED))
    report = build_report(
        settings,
        quick=args.quick,
        costs=costs,
        quantiles=quantiles,
        took_s=time.perf_counter() - started,
    )
    if args.json:
        json.dump(report, sys.stdout, indent=2, allow_nan=False)
        print()
    else:
        print_tables(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
