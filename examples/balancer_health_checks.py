"""Active health checks against real HTTP servers on loopback.

Three tiny web servers run in this process; one starts answering 503. The
checker marks it down after ``fall`` failed checks, picks avoid it, and it
comes back after ``rise`` passed checks once it is healthy again.

Run it as it is: ``python examples/balancer_health_checks.py``.
"""

from __future__ import annotations

import http.server
import threading
import time

from commercekit.balancer import HealthChecker, HttpProbe, NodeHealth, RoundRobinBalancer


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve() -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    server.status = 200  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    return server


def wait_for(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


servers = [serve() for _ in range(3)]
nodes = [f"127.0.0.1:{s.server_address[1]}" for s in servers]
pool = RoundRobinBalancer(nodes, name="web")
checker = HealthChecker(pool, HttpProbe("http://{node}/healthz"), interval_s=0.05, rise=2, fall=2)

with checker:
    print("picks:", [pool.pick() for _ in range(6)])
    servers[1].status = 503  # type: ignore[attr-defined]
    wait_for(lambda: pool.health(nodes[1]) is NodeHealth.DOWN)
    print(f"{nodes[1]} answers 503 -> {pool.health(nodes[1]).value}")
    print("picks:", [pool.pick() for _ in range(6)])
    servers[1].status = 200  # type: ignore[attr-defined]
    wait_for(lambda: pool.health(nodes[1]) is NodeHealth.UP)
    print(f"{nodes[1]} healthy again -> {pool.health(nodes[1]).value}")

for server in servers:
    server.shutdown()
    server.server_close()
print("checker stopped:", not checker.running)
