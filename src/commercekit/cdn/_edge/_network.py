"""``EdgeNetwork``: several ``EdgeCache`` nodes, each URL placed on one by consistent hashing.

Placement uses a :mod:`commercekit.balancer` keyed balancer (Maglev by
default), so each URL lives on one edge and is fetched from the origin
once for the whole network. Marking an edge down moves only that edge's URLs
(to their next edge); marking it up brings them back. Purges go to every edge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from commercekit.balancer import KeyedBalancer, MaglevBalancer
from commercekit.cdn._message._headers import Headers
from commercekit.cdn._message._messages import Request, Response
from commercekit.cdn._policy._keys import url_key
from commercekit.cdn._purge._selector import PurgeResult, PurgeSelector
from commercekit.errors import ConfigurationError

from ._cache import EdgeCache

__all__ = ["EdgeNetwork"]


class EdgeNetwork:
    """A CDN of *edges* (distinct names) behind one consistent-hash *balancer*."""

    def __init__(
        self,
        edges: Iterable[EdgeCache],
        *,
        balancer: KeyedBalancer | None = None,
        key: Callable[[Request], str] = url_key,
    ) -> None:
        self._edges = {edge.name: edge for edge in edges}
        if not self._edges:
            raise ConfigurationError("an EdgeNetwork needs at least one edge")
        self._balancer = balancer if balancer is not None else MaglevBalancer(list(self._edges))
        self._key = key

    @property
    def edges(self) -> dict[str, EdgeCache]:
        """The edges by name."""
        return dict(self._edges)

    def edge_for(self, request: Request) -> EdgeCache:
        """Return the edge that holds *request*'s URL now."""
        return self._edges[self._balancer.pick(self._key(request))]

    def edge_for_url(self, url: str) -> EdgeCache:
        """Return the edge that holds *url* now."""
        return self.edge_for(Request("GET", url))

    async def handle(self, request: Request) -> Response:
        """Answer *request* on its edge."""
        return await self.edge_for(request).handle(request)

    async def get(self, url: str, headers: Headers | dict[str, str] | None = None) -> Response:
        """Shorthand for ``handle(Request("GET", url, headers))``."""
        return await self.handle(Request("GET", url, Headers(headers or ())))

    async def purge(self, selector: PurgeSelector, /, *, soft: bool = False) -> PurgeResult:
        """Purge on every edge (a URL may have lived on another edge before a move)."""
        results = await asyncio.gather(
            *(e.purge(selector, soft=soft) for e in self._edges.values())
        )
        return PurgeResult(purged=sum(r.purged or 0 for r in results))

    def _health(self, name: str, action: str) -> None:
        if name not in self._edges:
            raise ConfigurationError(f"no edge named {name!r} in this network")
        method = getattr(self._balancer, action, None)
        if method is None:
            raise ConfigurationError(f"this balancer has no {action}(); set health on it directly")
        method(name)

    def mark_down(self, name: str) -> None:
        """Take edge *name* out of placement: only its URLs move."""
        self._health(name, "mark_down")

    def mark_up(self, name: str) -> None:
        """Put edge *name* back: its URLs come back to it."""
        self._health(name, "mark_up")

    async def aclose(self) -> None:
        """Close every edge."""
        for edge in self._edges.values():
            await edge.aclose()

    def __repr__(self) -> str:
        return f"EdgeNetwork(edges={list(self._edges)!r})"
