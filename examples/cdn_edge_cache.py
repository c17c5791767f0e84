"""An edge cache in front of a folder of product images: misses, hits, purges.

Run: python examples/cdn_edge_cache.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from commercekit.cdn import DirectoryOrigin, EdgeCache, MemoryStore, PurgeSelector
from commercekit.metrics import InMemoryMetrics


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "shoe.jpg").write_bytes(b"\xff\xd8 a picture of a shoe")
        metrics = InMemoryMetrics()
        origin = DirectoryOrigin(folder, cache_control="public, max-age=300, stale-if-error=3600")
        async with EdgeCache(origin, MemoryStore(16 * 1024 * 1024), metrics=metrics) as edge:
            url = "https://img.shop.example/shoe.jpg"
            for _ in range(3):
                response = await edge.get(url)
                print(response.status, response.outcome.value, response.headers.get("cache-status"))
            part = await edge.get(url, {"range": "bytes=0-1"})
            print("range:", part.status, part.headers.get("content-range"))
            await edge.purge(PurgeSelector.urls(url))
            print("after purge:", (await edge.get(url)).outcome.value)
        print("hits:", metrics.value("commercekit_cdn_hits_total", edge="edge"))
        print("misses:", metrics.value("commercekit_cdn_misses_total", edge="edge"))


if __name__ == "__main__":
    asyncio.run(main())
