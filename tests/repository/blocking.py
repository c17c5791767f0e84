"""The sync face of the asyncio repository, so one suite checks both twins.

:class:`Blocking` wraps an :class:`~commercekit.repository.AsyncDatabase` (and
whatever its calls return: units of work, repositories, sessions) and runs each
awaitable to its end on the given loop, or, when called from code already
inside the loop (the work of ``run``), through SQLAlchemy's greenlet bridge.
Tests written against :class:`~commercekit.repository.Database` then run
unchanged against the async twin, every call a real ``await`` on a real driver.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.util import await_, greenlet_spawn
from sqlalchemy.util.concurrency import in_greenlet

AWAITED_PROPERTIES = frozenset({"token", "consistency_token"})
"""Sync properties whose async twins are methods (they may query the primary)."""


class Blocking:
    """Run every awaitable that *target*'s attributes return; wrap the async objects."""

    __slots__ = ("_loop", "_target")

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    @property
    def unwrapped(self) -> Any:
        """The async object itself."""
        return self._target

    def _resolve(self, value: Any) -> Any:
        if inspect.isawaitable(value):
            value = await_(value) if in_greenlet() else self._loop.run_until_complete(value)
        module = type(value).__module__
        if module.startswith("commercekit.repository._asyncio") or isinstance(value, AsyncSession):
            return Blocking(value, self._loop)
        return value

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name in AWAITED_PROPERTIES and callable(value):
            return self._resolve(value())
        if name == "run":
            return self._run
        if callable(value):
            return lambda *args, **kwargs: self._resolve(value(*args, **kwargs))
        return self._resolve(value)

    def _run(self, work: Callable[[Any], Any], **options: Any) -> Any:
        async def awork(uow: Any) -> Any:
            return await greenlet_spawn(work, Blocking(uow, self._loop))

        return self._resolve(self._target.run(awork, **options))

    def __enter__(self) -> Any:
        return self._resolve(self._target.__aenter__())

    def __exit__(self, *exc: Any) -> Any:
        return self._resolve(self._target.__aexit__(*exc))
