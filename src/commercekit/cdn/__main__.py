"""``python -m commercekit.cdn serve --origin URL --port N``: run the caching reverse proxy."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m commercekit.cdn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a caching reverse proxy in front of an origin")
    serve.add_argument(
        "--origin", required=True, help="origin base URL, e.g. http://127.0.0.1:9000"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    serve.add_argument(
        "--max-bytes", type=int, default=256 * 1024 * 1024, help="in-process cache size"
    )
    serve.add_argument("--redis", default=None, help="share the cache in Redis at this URL")
    serve.add_argument(
        "--stale-if-error", type=float, default=0.0, help="default stale-if-error, s"
    )
    serve.add_argument("--grace", type=float, default=0.0, help="default stale-while-revalidate, s")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    from . import CachePolicy, EdgeCache, HttpOrigin, MemoryStore, RedisStore
    from ._proxy import ProxyHandler
    from ._server import serve

    store = RedisStore.from_url(args.redis) if args.redis else MemoryStore(args.max_bytes)
    policy = CachePolicy(
        default_stale_while_revalidate_s=args.grace, default_stale_if_error_s=args.stale_if_error
    )
    edge = EdgeCache(HttpOrigin(args.origin), store, policy=policy)
    server = await serve(ProxyHandler(edge), host=args.host, port=args.port)
    bound = server.sockets[0].getsockname()
    print(f"commercekit.cdn serving http://{bound[0]}:{bound[1]} -> {args.origin}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()
    await edge.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command == "serve":
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
