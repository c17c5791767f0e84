"""A connection pool owned by the event loop it was made on, and closed with it.

An asyncio pool (an aiohttp session, an httpx ``AsyncClient``, the pools of an
``AsyncEngine``) holds sockets registered with one event loop, and only that
loop can close them cleanly. A client (a payment transport, a CDN origin or
purger, an ``AsyncDatabase``) used inside ``asyncio.run()`` and kept past it
used to hold them open, and then leak them when dropped ("unclosed
transport", "unclosed connector"): its loop was gone.
:class:`LoopPool` makes the ownership explicit:

- the pool is made on the first call, on the running loop, and is that
  loop's: a call from another loop while it runs is a
  :class:`~commercekit.errors.ConfigurationError` (one client per loop);
- it is closed by ``aclose()``; by its loop as it shuts down, since an async
  generator holds it and ``asyncio.run()`` (like ``asyncio.Runner``,
  pytest-asyncio and uvicorn) finalizes async generators before it closes
  the loop; and, when its owner is collected while the loop lives, by that
  loop's async-generator finalizer, on the loop;
- a call after its loop has gone makes a new pool on the new loop;
- a call made once its loop has begun finalizing async generators (from an
  async generator's ``finally`` as ``asyncio.run()`` ends) is refused with
  :class:`~commercekit.errors.UnavailableError` before anything is sent: the
  pool is closing or closed, and one opened then would never be closed (the
  loop no longer finalizes new async generators). It is safe to send again
  from a running loop.

The one case left is a loop closed by hand without
``loop.shutdown_asyncgens()`` while the pool was still open: nothing can close
those sockets cleanly any more, so the owner warns (``ResourceWarning``) with
what to do, and the garbage collector closes them.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from commercekit.errors import ConfigurationError, UnavailableError

if TYPE_CHECKING:
    import asyncio

__all__ = ["AsyncClient", "LoopPool", "client_pool", "of_another_loop"]

_P = TypeVar("_P")

_ACLOSE = "'await ....aclose()' or 'async with'"
"""How a client's user closes it, as the warning of a loop closed by hand says."""


class AsyncClient(Protocol):
    """A pool that closes with ``aclose()`` and says so in ``is_closed`` (``httpx.AsyncClient``)."""

    @property
    def is_closed(self) -> bool:
        """Whether it is closed."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...


_C = TypeVar("_C", bound=AsyncClient)


class _Bound(Generic[_P]):
    """The pool now held, the loop it belongs to, and the async generator keeping it.

    *ended* is the loop that finalized the keeper (its shutdown began): no
    pool is opened on it again.
    """

    __slots__ = ("__weakref__", "ended", "keeper", "loop", "pool")

    def __init__(self) -> None:
        self.pool: _P | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.keeper: AsyncGenerator[None] | None = None
        self.ended: asyncio.AbstractEventLoop | None = None


async def _keep(
    pool: _P, close: Callable[[_P], Awaitable[None]], bound: weakref.ref[_Bound[_P]]
) -> AsyncGenerator[None]:
    """Hold *pool* until closed: by ``aclose()``, or by its loop's shutdown or finalizer.

    *bound* is weak: the keeper must not keep its owner's state alive (a
    dropped owner frees its keeper at once, which hands the pool to the loop).
    """
    try:
        yield
    finally:
        held = bound()
        if held is not None and held.pool is pool:  # no aclose() nor later loop let go of it
            held.ended = held.loop
        await _to_the_end(close, pool)


async def _to_the_end(close: Callable[[_P], Awaitable[None]], pool: _P) -> None:
    """Close *pool* to the end, even if this task is interrupted meanwhile; then re-raise that.

    The loop's finalizer closes a dropped owner's keeper in a task of its own,
    and ``asyncio.run()`` cancels every task once as it ends, that one too (it
    reaches the keeper as ``GeneratorExit``): that cut a close of several
    awaits (an engine's pool, a connection at a time) short. So the close runs
    in a task of its own, shielded; if the loop's end cancelled that task as
    well, the close is run once more (closes are idempotent) for what is left.
    """
    import asyncio

    interrupted: BaseException | None = None
    for _ in range(2):
        task = asyncio.ensure_future(close(pool))
        while not task.done():
            try:
                await asyncio.shield(task)
            except (asyncio.CancelledError, GeneratorExit) as exc:
                interrupted = exc
        if not task.cancelled():
            break
    if interrupted is not None:
        raise interrupted
    task.result()


def _finalizing(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether *loop* has begun ``shutdown_asyncgens()`` (asyncio's loops say so).

    Only asyncio's own loops show it (a private attribute, read defensively);
    uvloop keeps it in C, where this reads False. There the portable guard is
    the pool's keeper: once the loop finalized it, :meth:`LoopPool.get`
    refuses, but a first call racing that moment may still open a pool.
    """
    return bool(getattr(loop, "_asyncgens_shutdown_called", False))


class LoopPool(Generic[_P]):
    """A pool made by *open_pool* on the running loop, closed by *close_pool* on that loop.

    *is_closed* says whether a pool is closed already. *owner* names the
    client in messages, and *how_to_close* how its user closes it (the
    ``ResourceWarning`` of a loop closed by hand says so).
    """

    def __init__(
        self,
        owner: str,
        open_pool: Callable[[], _P],
        close_pool: Callable[[_P], Awaitable[None]],
        is_closed: Callable[[_P], bool],
        *,
        how_to_close: str = _ACLOSE,
    ) -> None:
        self._owner = owner
        self._how = how_to_close
        self._open = open_pool
        self._close = close_pool
        self._is_closed = is_closed
        self._bound: _Bound[_P] = _Bound()
        weakref.finalize(self, _dropped, self._bound, is_closed, owner, how_to_close)

    @property
    def pool(self) -> _P | None:
        """The pool now held, if any (open or closed by its loop)."""
        return self._bound.pool

    async def get(self) -> _P:
        """The running loop's pool, made now if there is none yet.

        Raises :class:`UnavailableError` (nothing sent) once the loop has begun
        finalizing async generators: see the module's docstring.
        """
        import asyncio

        loop = asyncio.get_running_loop()
        bound = self._bound
        pool = bound.pool
        if bound.ended is loop or _finalizing(loop):
            raise UnavailableError(
                f"{self._owner} was called after its event loop began shutting down "
                "(finalizing async generators, as asyncio.run() does as it ends): its "
                "connection pool is closed or closing, so nothing was sent; send it again "
                "from a running event loop"
            )
        if pool is not None and bound.loop is loop and not self._is_closed(pool):
            return pool
        self._release(loop)
        pool = self._open()
        keeper = _keep(pool, self._close, weakref.ref(bound))
        bound.pool, bound.loop, bound.keeper, bound.ended = pool, loop, keeper, None
        await keeper.__anext__()  # runs to its yield at once: the loop now tracks it
        return pool

    async def aclose(self) -> None:
        """Close the pool now (on its own loop), or let its loop close it."""
        import asyncio

        bound = self._bound
        keeper = bound.keeper
        loop = asyncio.get_running_loop()
        if keeper is not None and bound.loop is loop:
            # Once the loop finalizes async generators it closes the keeper itself (or
            # has): a second aclose() of it would fail "already running".
            closing = bound.ended is loop or _finalizing(loop)
            bound.pool = bound.loop = bound.keeper = None
            if not closing:
                await keeper.aclose()
        else:
            self._release(None)

    def _release(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Let go of a pool that belongs to another loop than *loop* (or to none)."""
        bound = self._bound
        pool, old = bound.pool, bound.loop
        if pool is None or old is None or self._is_closed(pool):
            bound.pool = bound.loop = bound.keeper = None
            return
        if old.is_running() and old is not loop:
            raise ConfigurationError(
                f"{self._owner} is in use on another event loop that is still running; "
                "make one per event loop"
            )
        if old.is_closed():
            _warn_unclosed(self._owner, self._how, old, stacklevel=4)
        # Dropping the keeper hands the pool to its loop's async-generator
        # finalizer, which closes it on that loop (if the loop ever runs again).
        bound.pool = bound.loop = bound.keeper = None


def _warn_unclosed(
    owner: str, how: str, loop: asyncio.AbstractEventLoop, *, stacklevel: int
) -> None:
    why = (
        "its pool was still open when its event loop closed, after the loop had finalized "
        "its async generators"
        if _finalizing(loop)
        else "its event loop was closed without loop.shutdown_asyncgens() (which "
        "asyncio.run() calls)"
    )
    warnings.warn(
        f"{owner} was not closed, and {why}, so its pooled connections could not be closed "
        f"cleanly: close it with {how} before its event loop ends",
        ResourceWarning,
        stacklevel=stacklevel,
    )


def _dropped(bound: _Bound[_P], is_closed: Callable[[_P], bool], owner: str, how: str) -> None:
    """The owner was collected: say so if its pool can no longer be closed cleanly."""
    pool, loop = bound.pool, bound.loop
    if pool is not None and loop is not None and loop.is_closed() and not is_closed(pool):
        _warn_unclosed(owner, how, loop, stacklevel=2)


def client_pool(owner: str, open_client: Callable[[], _C]) -> LoopPool[_C]:
    """A :class:`LoopPool` of clients made by *open_client* (``httpx.AsyncClient`` and the like)."""
    return LoopPool(owner, open_client, _aclose_client, _client_closed)


async def _aclose_client(client: AsyncClient) -> None:
    await client.aclose()


def _client_closed(client: AsyncClient) -> bool:
    return client.is_closed


_OTHER_LOOP = ("attached to a different loop", "Event loop is closed", "different event loop")


def of_another_loop(exc: BaseException) -> bool:
    """Whether *exc* is asyncio refusing a client of another (or a closed) event loop.

    A pool the caller passed in (a ``redis.asyncio`` client, an ``AsyncEngine``)
    and used on a later loop fails so in its driver, as a bare ``RuntimeError``;
    its owner raises a :class:`~commercekit.errors.ConfigurationError` instead.
    """
    return isinstance(exc, RuntimeError) and any(text in str(exc) for text in _OTHER_LOOP)
