"""``python -m shop serve|seed|up`` (run from ``examples/``)."""

from __future__ import annotations

import argparse
import sys

from shop.settings import Settings

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shop")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run one app server (uvicorn, uvloop, httptools)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    sub.add_parser("seed", help="create the catalog, stock and images if the shop is empty")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "seed":
        from shop.root import build_shop
        from shop.seed import seed

        print(f"seeded {seed(build_shop(settings))} products into {settings.database_url}")
        return 0
    import uvicorn

    from shop.root import build_shop
    from shop.seed import seed
    from shop.web import create_app

    shop = build_shop(settings)
    seed(shop)
    uvicorn.run(
        create_app(settings, shop),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,  # the app logs one line per request itself (shop.observe)
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
