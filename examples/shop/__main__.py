"""``python -m shop serve|seed|front|origin|consume|up`` (run from ``examples/``)."""

from __future__ import annotations

import argparse
import sys
import time

from shop.settings import Settings, redact_url

__all__ = ["main"]


def _uvicorn(app: object, port: int, host: str = "127.0.0.1", what: str = "serving") -> None:
    """Serve *app* on *host*:*port* (0: a free port), after printing the URL it listens on.

    The socket is bound here, before uvicorn starts, so the port printed for
    ``--port 0`` is the one the kernel chose and already held.
    """
    import socket

    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"{what} on http://{shown}:{bound}", flush=True)
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=bound,
        loop="uvloop",
        http="httptools",
        access_log=False,  # each app logs one line per request itself (shop.observe)
        proxy_headers=True,  # the client address from the front balancer's X-Forwarded-For
        forwarded_allow_ips="127.0.0.1",
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn raises Ctrl-C again once it has shut down
        pass
    finally:
        sock.close()
    if not server.started:
        sys.exit(3)  # uvicorn's startup-failure code, as uvicorn.run exits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shop")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "one app server (uvicorn, uvloop, httptools)"),
        ("origin", "the image origin the edge fetches from"),
        ("consume", "the analytics consumer (outbox relay and aggregates)"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
        if name == "consume":
            p.add_argument(
                "--consumer",
                default="analytics-1",
                help="its name in the event log's group (a second one, for failover)",
            )
    sub.add_parser("seed", help="create the catalog, stock and images if the shop is empty")
    front = sub.add_parser("front", help="the front load balancer")
    front.add_argument("--host", default="127.0.0.1")
    front.add_argument("--port", type=int, default=8000)
    front.add_argument("--backends", required=True, help="host:port,host:port,...")
    up = sub.add_parser("up", help="the whole fleet on this machine")
    up.add_argument("--apps", type=int, default=2, help="app server processes (default 2)")
    up.add_argument("--port", type=int, default=8000, help="the front balancer's port")
    demo = sub.add_parser("demo", help="the fleet, a simulated crowd, failures, a report")
    demo.add_argument("--once", action="store_true", help="exit after the report")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--seconds", type=float, default=45.0)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "seed":
        from shop.root import build_shop
        from shop.seed import seed

        where = redact_url(settings.database_url)
        print(f"seeded {seed(build_shop(settings))} products into {where}")
    elif args.command == "serve":
        from shop.root import build_shop
        from shop.seed import seed
        from shop.web import create_app

        shop = build_shop(settings)
        seed(shop)
        _uvicorn(create_app(settings, shop), args.port, args.host, "app server")
    elif args.command == "origin":
        from shop.services import origin_app

        _uvicorn(origin_app(settings), args.port, args.host, "image origin")
    elif args.command == "consume":
        from shop.services import consumer_app

        _uvicorn(
            consumer_app(settings, consumer=args.consumer),
            args.port,
            args.host,
            "analytics consumer",
        )
    elif args.command == "front":
        from shop.front import run_front

        # --port 0: the front binds a free port and prints which
        run_front([b.strip() for b in args.backends.split(",") if b.strip()], args.host, args.port)
    elif args.command == "demo":
        import socket

        from shop.demo import run_demo
        from shop.fleet import Fleet, free_port

        port = args.port
        with socket.socket() as probe:
            # 0, or taken: a free one (the fleet prints the URL it chose)
            if port == 0 or probe.connect_ex(("127.0.0.1", port)) == 0:
                port = free_port()
        fleet = Fleet(settings, apps=2, front_port=port)
        try:
            started = time.monotonic()
            print("starting the fleet ...", flush=True)
            fleet.start()
            print(fleet.describe(), flush=True)
            print(run_demo(fleet, seconds=args.seconds), flush=True)
            took = time.monotonic() - started
            print(f"took          {took:.0f} s (fleet start, crowd, recovery, report)", flush=True)
            if not args.once:
                import threading

                print(f"\nthe shop keeps running at {fleet.url} (Ctrl-C stops it)", flush=True)
                threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            fleet.stop()
    else:
        import signal
        import threading

        from shop.fleet import Fleet, free_port

        # --port 0: a free one (the fleet prints the URL it chose)
        fleet = Fleet(settings, apps=args.apps, front_port=args.port or free_port())
        try:
            fleet.start()
            print(fleet.describe(), flush=True)
            done = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: done.set())
            signal.signal(signal.SIGINT, lambda *_: done.set())
            done.wait()
        finally:
            fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
