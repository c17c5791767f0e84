"""Several edges behind a consistent-hash balancer; one goes down, only its URLs move.

Run: python examples/cdn_network.py
"""

from __future__ import annotations

import asyncio

from commercekit.cdn import EdgeCache, EdgeNetwork, Headers, MockOrigin, Response


async def main() -> None:
    origin = MockOrigin(lambda r: Response(200, Headers({"cache-control": "max-age=60"}), b"img"))
    network = EdgeNetwork(EdgeCache(origin, name=f"edge-{i}") for i in range(4))
    urls = [f"https://img.shop.example/p/{i}.jpg" for i in range(1000)]
    for url in urls:
        await network.get(url)
    before = {u: network.edge_for_url(u).name for u in urls}
    network.mark_down("edge-1")
    moved = sum(before[u] != network.edge_for_url(u).name for u in urls)
    owned = sum(name == "edge-1" for name in before.values())
    print(f"origin requests: {len(origin.requests)}; edge-1 held {owned} URLs, {moved} moved")
    await network.aclose()


if __name__ == "__main__":
    asyncio.run(main())
