"""Every benchmark script runs (in its quick mode) and reports its targets as JSON.

Performance is judged by the benchmarks themselves, not here: this only keeps
the scripts working and their JSON keys honest (a ``meets_*`` key is a verdict
on something the run measured, so a script that measured nothing says
``skipped`` instead). The scripts run three at a
time (their figures are not read here, so sharing the cores costs nothing but
wall time), started together when the first of these tests asks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import missing_service

BENCHMARKS = sorted((Path(__file__).parent.parent / "benchmarks").glob("[!_]*.py"))


def _run(script: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest,
) -> Iterator[dict[Path, Future[subprocess.CompletedProcess[str]]]]:
    chosen = [
        item.callspec.params["script"]
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == _TEST_NAME
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        yield {script: pool.submit(_run, script) for script in chosen}


_TEST_NAME = "test_benchmark_reports_its_targets"


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_benchmark_reports_its_targets(
    script: Path, runs: dict[Path, Future[subprocess.CompletedProcess[str]]]
) -> None:
    result = runs[script].result()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    if "skipped" in report:  # a tool it needs is missing (edge.py: wrk, nginx)
        assert not any(key.startswith("meets_") for key in report), report
        missing_service(f"{script.name}: {report['skipped']}")
    meets = {key: value for key, value in report.items() if key.startswith("meets_")}
    assert meets, f"{script.name} --json has no meets_<target> keys"
    assert all(isinstance(value, bool) for value in meets.values())
