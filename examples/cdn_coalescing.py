"""A thousand shoppers hit one new product image at once: the origin sees one request.

Run: python examples/cdn_coalescing.py
"""

from __future__ import annotations

import asyncio

from commercekit.cdn import EdgeCache, Headers, MockOrigin, Request, Response


async def slow_image_server(request: Request) -> Response:
    await asyncio.sleep(0.05)  # a slow origin: every waiter shares this one fetch
    return Response(200, Headers({"cache-control": "max-age=60"}), b"<jpeg bytes>")


async def main() -> None:
    origin = MockOrigin(slow_image_server)
    async with EdgeCache(origin) as edge:
        url = "https://img.shop.example/new-sneaker.jpg"
        responses = await asyncio.gather(*(edge.get(url) for _ in range(1000)))
        print(f"{len(responses)} responses, {len(origin.requests)} origin request(s)")


if __name__ == "__main__":
    asyncio.run(main())
