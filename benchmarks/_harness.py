"""What the benchmark scripts share: a description of the machine the figures came from."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any


def machine(*packages: str) -> dict[str, Any]:
    """The interpreter, OS and CPU, and the installed version of each of *packages*."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            cpu = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in cpuinfo
                    if line.startswith("model name")
                ),
                cpu,
            )
    except OSError:
        pass
    report: dict[str, Any] = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpu": cpu,
        "cpus": os.cpu_count(),
    }
    for package in packages:
        report[package.replace("-", "_")] = importlib.metadata.version(package)
    return report
