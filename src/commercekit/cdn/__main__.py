"""``python -m commercekit.cdn serve --origin URL --port N``: run the caching reverse proxy.

Every option and its default is listed by ``serve --help`` and in docs/cdn.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

_KIB = 1024


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m commercekit.cdn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a caching reverse proxy in front of an origin")
    add = serve.add_argument
    add("--origin", required=True, help="origin base URL, e.g. http://127.0.0.1:9000")
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8080, help="port to listen on (default 8080)")
    add("--workers", type=int, default=1, help="worker processes sharing the port (default 1)")
    add("--backlog", type=int, default=4096, help="listen queue length (default 4096)")
    add("--header-timeout", type=float, default=10.0, help="header deadline, s (default 10)")
    add("--idle-timeout", type=float, default=60.0, help="keep-alive idle timeout, s (default 60)")
    add("--max-header-bytes", type=int, default=64 * _KIB, help="default 65536")
    add("--max-body-bytes", type=int, default=1024 * _KIB, help="request body limit (1 MiB)")
    add("--origin-timeout", type=float, default=30.0, help="origin deadline, s (default 30)")
    add("--drain-timeout", type=float, default=10.0, help="SIGTERM drain deadline, s (10)")
    add("--access-log", default="-", help="'-' for stdout (default), a file path, or 'off'")
    add("--access-log-format", choices=("combined", "common"), default="combined")
    add("--admin-port", type=int, default=None, help="serve /metrics and /purge on this port")
    add("--admin-host", default="127.0.0.1", help="admin address (default 127.0.0.1)")
    add(
        "--admin-token-env",
        default="COMMERCEKIT_CDN_ADMIN_TOKEN",
        help="environment variable holding the purge token",
    )
    add("--loop", choices=("auto", "uvloop", "asyncio"), default="auto", help="event loop")
    add("--max-bytes", type=int, default=256 * _KIB * _KIB, help="in-process cache size")
    add("--redis", default=None, help="share the cache in Redis at this URL")
    add("--redis-timeout", type=float, default=0.25, help="deadline of one Redis call, s")
    add("--redis-breaker-failures", type=int, default=3, help="failures that open the breaker")
    add("--redis-breaker-reset", type=float, default=1.0, help="breaker open time, s (1)")
    add(
        "--redis-max-entry-bytes",
        type=int,
        default=8 * _KIB * _KIB,
        help="largest response kept in Redis (default 8 MiB)",
    )
    add(
        "--near-bytes",
        type=int,
        default=32 * _KIB * _KIB,
        help="in-process tier in front of Redis (default 32 MiB; 0: none)",
    )
    add("--stale-if-error", type=float, default=0.0, help="default stale-if-error, s")
    add("--grace", type=float, default=0.0, help="default stale-while-revalidate, s")
    add("--worker-control", default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command != "serve":
        return 2
    from ._servers._workers import run_parent, run_worker

    if args.workers < 1:
        print("--workers must be 1 or more", file=sys.stderr)
        return 2
    token = os.environ.get(args.admin_token_env, "")
    if args.workers > 1 and args.worker_control is None:
        _run(args.loop, run_parent(args, argv, token))
    else:
        _run(args.loop, run_worker(args, token))
    return 0


def _run(loop: str, main: Coroutine[Any, Any, None]) -> None:
    """Run *main* on uvloop (``auto``: where it is installed) or on asyncio's own loop."""
    if loop != "asyncio":
        try:
            import uvloop
        except ImportError as exc:
            if loop == "uvloop":
                from commercekit._extras import missing_extra

                main.close()  # never started: no "coroutine was never awaited" warning
                raise missing_extra("--loop uvloop", "cdn", exc) from exc
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


if __name__ == "__main__":
    sys.exit(main())
