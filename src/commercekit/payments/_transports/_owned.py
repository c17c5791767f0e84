"""Who closes a gateway's transport: the gateway closes the one it made, never one it was given.

Every shipped gateway takes ``transport=None``. Given one, the caller owns it
and closes it. Given none, the gateway makes the default (a pooled
:class:`~commercekit.payments.HttpxTransport`, or for the async gateways an
:class:`~commercekit.payments.AiohttpTransport`) and owns it: ``close()`` /
``with`` for the sync gateways, ``await aclose()`` / ``async with`` for the
async ones, close it. A gateway with nothing to close (the sandboxes) takes
``with`` too, so code written against one gateway runs against another.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from commercekit._closing import AsyncClosing, Closing
from commercekit.payments._transports._aiohttp import default_async_transport
from commercekit.payments._transports._httpx import AsyncHttpTransport, default_transport
from commercekit.payments._typing import HttpTransport

__all__ = ["OwnsAsyncTransport", "OwnsTransport"]


class OwnsTransport(Closing):
    """``close()`` and ``with`` for a sync gateway: it closes the transport it made itself."""

    _close_own: Callable[[], None] | None = None

    def _adopt(self, transport: HttpTransport | None) -> HttpTransport:
        """*transport*, or the default one, which the gateway then owns and closes."""
        if transport is not None:
            return transport
        made = default_transport()
        self._close_own = getattr(made, "close", None)
        return made

    def close(self) -> None:
        """Close the transport the gateway made (one passed in is the caller's to close)."""
        if self._close_own is not None:
            self._close_own()


class OwnsAsyncTransport(AsyncClosing):
    """``aclose()`` and ``async with`` for an async gateway: it closes the transport it made."""

    _aclose_own: Callable[[], Awaitable[None]] | None = None

    def _adopt(self, transport: AsyncHttpTransport | None) -> AsyncHttpTransport:
        """*transport*, or the default one, which the gateway then owns and closes."""
        if transport is not None:
            return transport
        made = default_async_transport()
        self._aclose_own = made.aclose
        return made

    async def aclose(self) -> None:
        """Close the transport the gateway made (one passed in is the caller's to close)."""
        if self._aclose_own is not None:
            await self._aclose_own()
