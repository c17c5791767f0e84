"""Every benchmark script runs (in its quick mode) and reports its targets as JSON.

Performance is judged by the benchmarks themselves, not here: this only keeps
the scripts working and their JSON keys honest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).parent.parent / "benchmarks").glob("[!_]*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_benchmark_reports_its_targets(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    meets = {key: value for key, value in report.items() if key.startswith("meets_")}
    assert meets, f"{script.name} --json has no meets_<target> keys"
    assert all(isinstance(value, bool) for value in meets.values())
