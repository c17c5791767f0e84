"""``python -m shop <command> --port 0``: each picks a free port and prints the URL it chose.

Every command that listens is started with ``--port 0``; the URL it prints
must name a real port, and that port must answer. Each run has its own data
folder and is stopped with SIGINT (Ctrl-C), which every command handles.
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.shop._procs import EXAMPLES, shop_env

URL = re.compile(r"\b(?:at|on) (http://127\.0\.0\.1:(\d+))")


def _first_url(proc: subprocess.Popen[str], timeout_s: float) -> tuple[str, list[str]]:
    """The first URL the process prints (after ``at`` or ``on``), and what it printed."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        found = URL.search(line)
        if found:
            return found.group(1), seen
    raise AssertionError(f"no URL printed within {timeout_s} s: {''.join(seen)[-2000:]}")


@pytest.mark.parametrize(
    ("args", "health"),
    [
        (["serve"], "/healthz"),
        (["origin"], "/metrics"),  # healthy once a seed wrote the image manifest
        (["consume"], "/metrics"),
        (["front", "--backends", "127.0.0.1:9"], None),
        (["up", "--apps", "1"], "/healthz"),
        (["demo", "--seconds", "1"], "/healthz"),
    ],
    ids=["serve", "origin", "consume", "front", "up", "demo"],
)
def test_port_0_picks_a_free_port_and_prints_its_url(
    tmp_path: Path, args: list[str], health: str | None
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "shop", *args, "--port", "0"],
        cwd=EXAMPLES,
        env=shop_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url, seen = _first_url(proc, timeout_s=120)
        assert not url.endswith(":0"), "".join(seen)
        if health is None:  # the front, with no backend up: it listens, and answers
            answer = httpx.get(f"{url}/", timeout=10)
            assert answer.status_code in (502, 503), answer.text
        else:
            deadline = time.monotonic() + 60
            while True:
                try:
                    assert httpx.get(f"{url}{health}", timeout=5).status_code == 200
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, "".join(seen)
                    assert time.monotonic() < deadline, f"{url} never answered"
                    time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C: each command stops what it started
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
