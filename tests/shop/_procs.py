"""Start the shop's processes on free loopback ports for the tests, and stop them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shop_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(EXAMPLES)])
    env["SHOP_DATA_DIR"] = str(data_dir)
    env["SHOP_SEED_PRODUCTS"] = "24"
    env.update(extra)
    return env


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready within {timeout_s} s")


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "shop", *args], cwd=EXAMPLES, env=env, stdout=out, stderr=out
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def shop_in_thread(
    env: dict[str, str], name: str, *, seed: bool = True
) -> Iterator[tuple[str, Any]]:
    """An app server with *env*'s settings, uvicorn in a thread named *name*: its URL and Shop.

    Real HTTP on loopback without a process of its own (a new process would
    spend longer importing than most tests run). The catalog is seeded unless
    *seed* is false; the server stops and the Shop closes at the end.
    """
    import uvicorn
    from shop.root import build_shop
    from shop.seed import seed as seed_shop
    from shop.settings import Settings
    from shop.web import create_app

    settings = Settings.from_env(env)
    shop = build_shop(settings)
    try:
        if seed:
            seed_shop(shop)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, shop),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                access_log=False,
            )
        )
        thread = threading.Thread(target=server.run, name=name, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while not server.started:
                assert thread.is_alive(), "uvicorn stopped at start"
                assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
                time.sleep(0.02)
            yield f"http://127.0.0.1:{port}", shop
        finally:
            server.should_exit = True
            thread.join(timeout=15)
    finally:
        shop.close()


CHECKOUT_ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "Main St 1",
    "city": "Berlin",
    "postcode": "10115",
    "country": "DE",
}
# The checkout form's fields but the card number.
ADDRESS = {**CHECKOUT_ADDRESS, "expiry": "12/30", "cvc": "123"}


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def prom_query(base: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result rows from the Prometheus at *base*."""
    url = f"{base}/api/v1/query?query={urllib.parse.quote(promql)}"
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        result: list[dict[str, Any]] = json.loads(response.read())["data"]["result"]
        return result


@contextlib.contextmanager
def prometheus(jobs: dict[str, list[str]], folder: Path) -> Iterator[str]:
    """Debian's Prometheus scraping *jobs* (name -> targets) every second; its URL.

    Waits until every target was scraped up; skips (fails under
    REQUIRE_SERVICES) when the binary is not installed.
    """
    from tests.conftest import missing_service

    binary = shutil.which("prometheus")
    if binary is None:
        missing_service("prometheus is not installed (Debian package prometheus)")
    config = folder / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n"
        + "".join(
            f"  - job_name: {job}\n    static_configs: [{{targets: {json.dumps(targets)}}}]\n"
            for job, targets in jobs.items()
        )
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/-/ready", proc, 60)
        want = sum(len(t) for t in jobs.values())
        up: dict[str, float] = {}
        deadline = time.monotonic() + 60
        while (
            want and time.monotonic() < deadline and (len(up) < want or set(up.values()) != {1.0})
        ):
            assert proc.poll() is None, "prometheus exited"
            up = {r["metric"]["instance"]: float(r["value"][1]) for r in prom_query(base, "up")}
            time.sleep(0.5)
        assert len(up) == want, up
        assert not up or set(up.values()) == {1.0}, up  # every target scraped
        yield base
    finally:
        stop(proc)
