"""Test doubles for the CDN: an origin that runs a plain function, and a clock you move by hand."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from ._message._messages import Request, Response

__all__ = ["ManualClock", "MockOrigin"]

Handler = Callable[[Request], "Response | Awaitable[Response]"]


class MockOrigin:
    """An :class:`~commercekit.cdn.Origin` that answers with ``handler(request)``.

    The handler may be a plain or an ``async`` function, and may raise (an
    :class:`~commercekit.cdn.OriginError` to imitate a dead origin). Every
    request it saw is kept in :attr:`requests`, in order.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.requests: list[Request] = []
        self.closed = False

    async def fetch(self, request: Request, /) -> Response:
        """Record *request* and return the handler's response."""
        self.requests.append(request)
        result = self._handler(request)
        if inspect.isawaitable(result):
            return await result
        return result

    async def aclose(self) -> None:
        """Mark the origin closed."""
        self.closed = True

    def __repr__(self) -> str:
        return f"MockOrigin(requests={len(self.requests)})"


class ManualClock:
    """A wall clock (epoch seconds) that moves only when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by *seconds*."""
        self.now += seconds
