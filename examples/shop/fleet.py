"""``python -m shop up``: the whole shop on one machine, one process per part.

::

    front balancer :8000 ──sticky by sid──▶ app-1 :p1, app-2 :p2, ... (uvicorn each)
    image edge (python -m commercekit.cdn serve) ──▶ image origin
    analytics consumer (outbox relay + aggregates)

Each process logs to ``<data>/logs/<name>.log`` and answers ``/healthz``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from shop.settings import Settings

__all__ = ["Fleet", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on *host* now (for a child process that binds it itself)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as r:  # loopback only
            return int(r.status) == 200
    except OSError:
        return False


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    health: str
    popen: subprocess.Popen[bytes] | None = None


@dataclass
class Fleet:
    """Starts, watches and stops the shop's processes."""

    settings: Settings
    apps: int = 2
    front_port: int = 8000
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.front_port}"

    @property
    def logs(self) -> Path:
        path = self.settings.data_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def app_names(self) -> list[str]:
        return [f"app-{i + 1}" for i in range(self.apps)]

    def plan(self) -> None:
        py = [sys.executable, "-m"]
        env = {**self.env, "SHOP_DATA_DIR": str(self.settings.data_dir)}
        origin, edge, edge_admin, consumer = free_port(), free_port(), free_port(), free_port()
        env["SHOP_ASSET_BASE"] = f"http://127.0.0.1:{edge}"
        env["SHOP_FRONT_URL"] = self.url
        env["SHOP_EDGE_ADMIN_URL"] = f"http://127.0.0.1:{edge_admin}"
        self.edge_admin = edge_admin
        tier = self.settings.edge_redis_url  # a Redis tier every edge shares, if there is one
        redis = ["--redis", tier] if tier else []
        self.edge_port = edge
        self._add("origin", [*py, "shop", "origin", "--port", str(origin)], env, origin)
        self._add(
            "edge",
            [
                *py,
                "commercekit.cdn",
                "serve",
                "--origin",
                f"http://127.0.0.1:{origin}",
                "--port",
                str(edge),
                "--admin-port",
                str(edge_admin),
                "--stale-if-error",
                "86400",
                "--access-log",
                str(self.logs / "edge-access.log"),
                *redis,
            ],
            env,
            edge,
            health=f"http://127.0.0.1:{edge_admin}/healthz",
        )
        backends = []
        for name in self.app_names():
            port = free_port()
            backends.append(f"127.0.0.1:{port}")
            self._add(
                name,
                [*py, "shop", "serve", "--port", str(port)],
                {**env, "SHOP_SERVER_NAME": name},
                port,
            )
        self._add("analytics", [*py, "shop", "consume", "--port", str(consumer)], env, consumer)
        self._add(
            "front",
            [
                *py,
                "shop",
                "front",
                "--port",
                str(self.front_port),
                "--backends",
                ",".join(backends),
            ],
            env,
            self.front_port,
        )

    def _add(
        self, name: str, argv: list[str], env: dict[str, str], port: int, health: str | None = None
    ) -> None:
        self.procs[name] = Proc(name, argv, env, port, health or f"http://127.0.0.1:{port}/healthz")

    def start(self, *, timeout_s: float = 60.0) -> None:
        """Seed the shop, then start every process and wait until each is healthy."""
        from shop.root import build_shop
        from shop.seed import seed

        seeded = build_shop(self.settings)
        try:
            seed(seeded)
        finally:
            seeded.close()
        if not self.procs:
            self.plan()
        for name in self.procs:
            self.spawn(name)
        deadline = time.monotonic() + timeout_s
        for proc in self.procs.values():
            while not _healthy(proc.health):
                if proc.popen is not None and proc.popen.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited; see {self.logs / proc.name}.log")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{proc.name} did not become healthy")
                time.sleep(0.1)

    def spawn(self, name: str) -> None:
        proc = self.procs[name]
        with (self.logs / f"{name}.log").open("ab") as out:
            proc.popen = subprocess.Popen(
                proc.argv,
                env=proc.env,
                stdout=out,
                stderr=out,
                cwd=Path(__file__).resolve().parent.parent,
            )

    def wait_healthy(self, name: str, timeout_s: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if _healthy(self.procs[name].health):
                return True
            time.sleep(0.1)
        return False

    def kill(self, name: str) -> None:
        """SIGKILL one process (the demo's and the tests' failure)."""
        popen = self.procs[name].popen
        if popen is not None and popen.poll() is None:
            popen.send_signal(signal.SIGKILL)
            popen.wait(timeout=10)

    def stop(self) -> None:
        """The front first (it drains), then the rest."""
        order = ["front", *[n for n in self.procs if n != "front"]]
        for name in order:
            popen = self.procs[name].popen
            if popen is not None and popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
                try:
                    popen.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait(timeout=5)

    def describe(self) -> str:
        lines = [f"shop running at {self.url}  (Ctrl-C stops it)"]
        for p in self.procs.values():
            pid = p.popen.pid if p.popen else "-"
            lines.append(f"  {p.name:<10} pid {pid:<7} {p.health}")
        lines.append(f"  logs in {self.logs}")
        return "\n".join(lines)
