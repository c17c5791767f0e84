"""benchmarks/shop.py reads wrk's output as wrk prints it (figures in seconds included)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.shop._procs import ROOT

LOADED = """Running 1s test @ http://127.0.0.1:37635/products/p001
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   610.02ms  150.92ms   1.07s    62.16%
    Req/Sec    49.50     42.43   112.00     75.00%
  Latency Distribution
     50%  637.77ms
     75%  690.96ms
     90%  739.80ms
     99%    1.07s{pad}
  37 requests in 1.11s, 131.85KB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:     33.48
Transfer/sec:    119.29KB
""".format(pad=" ")  # wrk pads a figure in seconds: "1.07s "


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_shop", ROOT / "benchmarks" / "shop.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wrk_figures_in_seconds_and_failed_requests_are_read() -> None:
    figures = bench().parse_wrk(LOADED)
    assert figures == {"rps": 33.48, "p50_ms": 637.77, "p99_ms": 1070.0, "errors": 9.0}


def test_wrk_output_without_a_distribution_reads_as_none() -> None:
    assert bench().parse_wrk("Running 1s test @ http://127.0.0.1:1/\nRequests/sec: 0.00\n") is None
