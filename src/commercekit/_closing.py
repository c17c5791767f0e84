"""``with`` and ``async with`` for whatever has ``close()`` or ``aclose()``: written once.

The payment transports and gateways and the CDN's HTTP clients close the same way;
they inherit the context-manager methods from here instead of each spelling them out.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncClosing", "Closing"]


class Closing:
    """``with x:`` calls ``x.close()`` at the end of the block."""

    def close(self) -> None:
        """Release what is held (the subclass says what)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClosing:
    """``async with x:`` awaits ``x.aclose()`` at the end of the block."""

    async def aclose(self) -> None:
        """Release what is held (the subclass says what)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
