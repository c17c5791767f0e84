"""Benchmark of the caching proxy's server (``python -m commercekit.cdn serve``) beside nginx.

Both run in front of the same loopback origin in the same run, loaded by the
same generator (``wrk``), one after the other, a few rounds each:

* cached 10 KiB hits, one worker each: requests/s and p99 latency;
* the same with two workers each: requests/s;
* a cached 5 MiB object: MB/s;
* for information, the proxy's ASGI app under uvicorn (uvloop, httptools),
  one worker, on the 10 KiB hit.

nginx is Debian's ``nginx-light``, one (or two) worker processes,
``proxy_cache`` in a folder on tmpfs (``/dev/shm``), access log off; wrk is
Debian's ``wrk``::

    apt-get install -y nginx-light wrk
    .venv/bin/python benchmarks/edge.py            # the table
    .venv/bin/python benchmarks/edge.py --json     # the same figures as one JSON object
    .venv/bin/python benchmarks/edge.py --quick    # a fast smoke run (rougher figures)

The machine's cores are shared by the proxy, nginx, wrk and the origin, so
each figure is the median of the rounds, and the spread (min-max over the
rounds) is printed beside it. The script reports; it does not fail when a
target is missed (read the ``meets_*`` keys of ``--json``). A target the run
did not measure has no ``meets_*`` key: without wrk or nginx, ``--json``
prints only ``skipped`` (the reason) and the target names.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine

ROOT = Path(__file__).resolve().parent.parent
SMALL = os.urandom(10 * 1024)
LARGE = os.urandom(5 * 1024 * 1024)


class _Origin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def do_GET(self) -> None:
        body = LARGE if self.path.startswith("/large") else SMALL
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=86400")
        self.send_header("ETag", '"v1"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _OriginServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a proxy closing its pooled connections at exit is not news


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def _warm(port: int, path: str) -> str:
    for _ in range(3):  # fill, then see a hit
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
            r.read()
            status = r.headers.get("Cache-Status") or r.headers.get("X-Cache-Status") or ""
    return status


@contextmanager
def _running(cmd: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[None]:
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(ROOT)
    )
    try:
        _wait_up(port, proc)
        time.sleep(0.3)  # every worker up
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _serve_supports(option: str) -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "commercekit.cdn", "serve", "--help"],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return option in out


@contextmanager
def ours(origin: str, workers: int) -> Iterator[int]:
    port = _free_port()
    cmd = [sys.executable, "-m", "commercekit.cdn", "serve", "--origin", origin]
    cmd += ["--port", str(port)]
    if _serve_supports("--workers"):
        cmd += ["--workers", str(workers), "--access-log", "off"]
    elif workers != 1:
        raise RuntimeError("this serve has no --workers")
    with _running(cmd, port, _env()):
        yield port


@contextmanager
def uvicorn(origin: str) -> Iterator[int]:
    port = _free_port()
    cmd = [sys.executable, __file__, "--_uvicorn", origin, str(port)]
    with _running(cmd, port, _env()):
        yield port


def _run_uvicorn(origin: str, port: int) -> None:
    import uvicorn as uv

    from commercekit.cdn import EdgeCache, HttpOrigin, MemoryStore, asgi_app

    edge = EdgeCache(HttpOrigin(origin), MemoryStore(256 * 1024 * 1024))
    uv.run(
        asgi_app(edge),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    proxy_cache_path {tmp}/cache levels=1:2 keys_zone=edge:16m max_size=1g inactive=1d;
    upstream origin {{ server {origin}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache edge;
            add_header X-Cache-Status $upstream_cache_status;
        }}
    }}
}}
"""


@contextmanager
def nginx(origin: str, workers: int) -> Iterator[int]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    port = _free_port()
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="edge-bench-") as tmp:
        os.chmod(tmp, 0o777)  # nginx's workers run as an unprivileged user when started as root
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(workers=workers, tmp=tmp, origin=origin, port=port),
            encoding="utf-8",
        )
        with _running([binary, "-c", str(conf), "-p", tmp], port):
            yield port


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def wrk(port: int, path: str, *, connections: int, seconds: float) -> dict[str, float]:
    """Run wrk (one thread) against *path*; return req/s, p99 seconds, MB/s and errors."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--latency",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s|m)\b", out)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", out)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "p99_s": float(p99.group(1)) * _UNITS[p99.group(2)] if p99 else float("nan"),
        "mb_s": float(transfer.group(1)) * _BYTES[transfer.group(2)] / 1e6 if transfer else 0.0,
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 1.0 if socket_errors else 0.0,
    }


MIX_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) hits = 0; misses = 0; n = 0; mix = args[1] == "mix"; prefix = args[2] end
request = function()
  n = n + 1
  if mix and n % 2 == 0 then
    return wrk.format("POST", "/cart/" .. n, nil, "{}")
  end
  local i = mix and (n - 1) / 2 or (n - 1)
  return wrk.format("GET", prefix .. (math.floor(i) % OBJECTS))
end
response = function(status, headers, body)
  local cs = headers["cache-status"] or headers["Cache-Status"] or ""
  if string.find(cs, "; hit", 1, true) then hits = hits + 1
  elseif string.find(cs, "fwd=uri-miss", 1, true) then misses = misses + 1 end
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("HITS %d MISSES %d\\n", t:get("hits"), t:get("misses")))
  end
end
"""
MIX_OBJECTS = 50


def hit_ratio(
    port: int, *, mix: bool, seconds: float, script: str, prefix: str
) -> dict[str, float]:
    """GETs cycling over MIX_OBJECTS objects, with a POST between two GETs if *mix*."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            "-c16",
            f"-d{int(seconds)}s",
            "-s",
            script,
            f"http://127.0.0.1:{port}/",
            "--",
            "mix" if mix else "get",
            prefix,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"HITS (\d+) MISSES (\d+)", out)
    hits, misses = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    return {
        "gets": float(hits + misses),
        "hit_ratio": hits / max(1, hits + misses),
        "fills_per_object": misses / max(1, min(hits + misses, MIX_OBJECTS)),
    }


def _median(runs: list[dict[str, float]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def _spread(runs: list[dict[str, float]], key: str) -> list[float]:
    return [min(r[key] for r in runs), max(r[key] for r in runs)]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    server = _OriginServer(("127.0.0.1", 0), _Origin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"127.0.0.1:{server.server_address[1]}"
    base = f"http://{origin}"
    seconds = 1.0 if args.quick else args.seconds
    rounds = 1 if args.quick else args.rounds
    conns = args.connections
    two_workers = _serve_supports("--workers")
    report: dict[str, Any] = {"machine": machine("h11", "httpx"), "rounds": rounds}
    runs: dict[str, list[dict[str, float]]] = {}
    mixes: dict[str, list[dict[str, float]]] = {}
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
    lua.write(MIX_LUA.replace("OBJECTS", str(MIX_OBJECTS)))
    lua.close()
    script = lua.name

    def run(name: str, port: int, path: str, c: int) -> None:
        runs.setdefault(name, []).append(wrk(port, path, connections=c, seconds=seconds))

    try:
        for _ in range(rounds):
            with ours(base, 1) as port:
                _warm(port, "/small")
                _warm(port, "/large")
                run("ours_small_1w", port, "/small", conns)
                run("ours_large_1w", port, "/large", 4)
                for name, mix in (("get_only", False), ("get_post", True)):  # objects of their own
                    mixes.setdefault(name, []).append(
                        hit_ratio(port, mix=mix, seconds=seconds, script=script, prefix=f"/{name}/")
                    )
            with nginx(origin, 1) as port:
                _warm(port, "/small")
                _warm(port, "/large")
                run("nginx_small_1w", port, "/small", conns)
                run("nginx_large_1w", port, "/large", 4)
            if two_workers:
                with ours(base, 2) as port:
                    for _ in range(4):  # each worker fills its own cache
                        _warm(port, "/small")
                    run("ours_small_2w", port, "/small", conns)
            with nginx(origin, 2) as port:
                _warm(port, "/small")
                run("nginx_small_2w", port, "/small", conns)
            if not args.no_uvicorn and not args.quick:
                with uvicorn(base) as port:
                    _warm(port, "/small")
                    run("uvicorn_small_1w", port, "/small", conns)
    finally:
        server.shutdown()
        os.unlink(script)
    for name, got in mixes.items():
        report[f"mix_{name}"] = {
            "hit_ratio": _median(got, "hit_ratio"),
            "fills_per_object": _median(got, "fills_per_object"),
            "fills_per_object_spread": _spread(got, "fills_per_object"),
            "gets": _median(got, "gets"),
        }
    for name, got in runs.items():
        report[name] = {
            "rps": _median(got, "rps"),
            "rps_spread": _spread(got, "rps"),
            "p99_ms": _median(got, "p99_s") * 1e3,
            "p99_ms_spread": [v * 1e3 for v in _spread(got, "p99_s")],
            "mb_s": _median(got, "mb_s"),
            "mb_s_spread": _spread(got, "mb_s"),
            "non_2xx": sum(r["non_2xx"] for r in got),
        }
    report["per_round"] = {  # same-round ratios: the machine's load changes between rounds
        f"{name}_{key}": [
            mine[key] / peer[key] if peer[key] else None
            for mine, peer in zip(runs[f"ours_{name}"], runs[f"nginx_{name}"], strict=False)
        ]
        for name, key in (("small_1w", "rps"), ("small_1w", "p99_s"), ("large_1w", "mb_s"))
        + ((("small_2w", "rps"),) if two_workers else ())
    }
    ratios: dict[str, float | None] = {}
    ratios["small_rps_1w"] = report["ours_small_1w"]["rps"] / report["nginx_small_1w"]["rps"]
    ratios["small_p99_1w"] = report["ours_small_1w"]["p99_ms"] / report["nginx_small_1w"]["p99_ms"]
    ratios["small_rps_2w"] = (
        report["ours_small_2w"]["rps"] / report["nginx_small_2w"]["rps"] if two_workers else None
    )
    ratios["large_mb_s"] = report["ours_large_1w"]["mb_s"] / report["nginx_large_1w"]["mb_s"]
    if "uvicorn_small_1w" in report:
        ratios["uvicorn_small_rps_1w"] = (
            report["uvicorn_small_1w"]["rps"] / report["nginx_small_1w"]["rps"]
        )
    report["ratios"] = ratios
    report["meets_small_rps_1w"] = ratios["small_rps_1w"] >= 0.5
    report["meets_small_p99_1w"] = ratios["small_p99_1w"] <= 2.0
    if ratios["small_rps_2w"] is not None:  # no verdict on two workers when not measured
        report["meets_small_rps_2w"] = ratios["small_rps_2w"] >= 0.5
    report["meets_large_mb_s"] = ratios["large_mb_s"] >= 0.9
    # Each object is missed once and then hit (one origin fill per object); POSTs to
    # other URLs must not discard fills in flight, which would add misses.
    get_only, get_post = report["mix_get_only"], report["mix_get_post"]
    report["meets_mixed_hit_ratio"] = get_post["fills_per_object"] <= max(
        1.0, get_only["fills_per_object"]
    )
    return report


def _table(report: dict[str, Any]) -> str:
    rows = [
        ("10 KiB hit, 1 worker, req/s", "small_1w", "rps", "small_rps_1w", ">= 0.5"),
        ("10 KiB hit, 1 worker, p99 ms", "small_1w", "p99_ms", "small_p99_1w", "<= 2.0"),
        ("10 KiB hit, 2 workers, req/s", "small_2w", "rps", "small_rps_2w", ">= 0.5"),
        ("5 MiB hit, 1 worker, MB/s", "large_1w", "mb_s", "large_mb_s", ">= 0.9"),
    ]
    lines = [f"{'':32} {'ours':>18} {'nginx':>18} {'ratio':>7}  target"]
    for label, part, key, ratio, target in rows:
        mine = report.get(f"ours_{part}")
        peer = report[f"nginx_{part}"]
        value = report["ratios"][ratio]
        lo, hi = peer[f"{key}_spread"]
        peer_s = f"{peer[key]:.1f} ({lo:.0f}-{hi:.0f})"
        if mine is None:
            mine_s, ratio_s = "n/a", "n/a"
        else:
            lo, hi = mine[f"{key}_spread"]
            mine_s, ratio_s = f"{mine[key]:.1f} ({lo:.0f}-{hi:.0f})", f"{value:.2f}"
        lines.append(f"{label:32} {mine_s:>18} {peer_s:>18} {ratio_s:>7}  {target}")
    g, m = report["mix_get_only"], report["mix_get_post"]
    lines.append(
        f"{'fills per object, GETs / 50% POSTs':32} {m['fills_per_object']:>18.3f} "
        f"{g['fills_per_object']:>18.3f} {'':>7}  mixed <= GET-only (ours both)"
    )
    if "uvicorn_small_1w" in report:
        u = report["uvicorn_small_1w"]
        lines.append(
            f"{'ASGI app under uvicorn, req/s':32} {u['rps']:>18.1f} "
            f"{report['nginx_small_1w']['rps']:>18.1f} "
            f"{report['ratios']['uvicorn_small_rps_1w']:>7.2f}  (information)"
        )
    return "\n".join(lines)


TARGETS = ("small_rps_1w", "small_p99_1w", "small_rps_2w", "large_mb_s", "mixed_hit_ratio")


def _have(tool: str) -> bool:
    return shutil.which(tool) is not None or Path(f"/usr/sbin/{tool}").exists()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-uvicorn", action="store_true")
    parser.add_argument("--_uvicorn", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._uvicorn:
        _run_uvicorn(args._uvicorn[0], int(args._uvicorn[1]))
        return
    missing = [tool for tool in ("wrk", "nginx") if not _have(tool)]
    if missing:
        reason = f"edge.py needs {' and '.join(missing)}: apt-get install -y nginx-light wrk"
        if args.json:  # nothing measured, so no meets_* verdict at all
            print(json.dumps({"skipped": reason, "targets": list(TARGETS)}))
        else:
            print(reason)
        return
    report = measure(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_table(report))


if __name__ == "__main__":
    main()
