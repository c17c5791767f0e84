"""The wheel built from a checkout carries py.typed and the package's modules."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_wheel_carries_py_typed(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("commercekit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "commercekit/py.typed" in names
    assert "commercekit/metrics/__init__.py" in names
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)
