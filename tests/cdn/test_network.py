"""Several edges: each URL on one edge; an edge going down moves only its own URLs."""

from __future__ import annotations

import asyncio

from commercekit.cdn import EdgeCache, EdgeNetwork, Headers, MockOrigin, PurgeSelector, Response

URLS = [f"http://shop.test/img/{i}.jpg" for i in range(400)]


def make() -> tuple[EdgeNetwork, MockOrigin]:
    origin = MockOrigin(
        lambda r: Response(200, Headers({"cache-control": "max-age=60", "cache-tag": "img"}), b"x")
    )
    return EdgeNetwork(EdgeCache(origin, name=f"edge{i}") for i in range(4)), origin


def test_each_url_is_fetched_once_for_the_whole_network() -> None:
    async def main() -> None:
        network, origin = make()
        for url in URLS + URLS:
            await network.get(url)
        assert len(origin.requests) == len(URLS)
        placed = {network.edge_for_url(u).name for u in URLS}
        assert placed == {"edge0", "edge1", "edge2", "edge3"}
        assert (await network.purge(PurgeSelector.tags("img"))).purged == len(URLS)
        await network.aclose()

    asyncio.run(main())


def test_an_edge_going_down_moves_only_its_own_urls() -> None:
    network, _ = make()
    before = {u: network.edge_for_url(u).name for u in URLS}
    network.mark_down("edge2")
    after = {u: network.edge_for_url(u).name for u in URLS}
    moved = {u for u in URLS if before[u] != after[u]}
    assert moved == {u for u in URLS if before[u] == "edge2"}
    assert "edge2" not in after.values()
    network.mark_up("edge2")
    assert {u: network.edge_for_url(u).name for u in URLS} == before
