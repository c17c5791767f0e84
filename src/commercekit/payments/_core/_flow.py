"""Flows: the payment rules written once, run by a sync driver or an asyncio driver.

A flow is a generator that does no I/O itself. Where it needs the outside
world (a store, a gateway, a transport) it yields an effect and is sent the
answer back, or has the error thrown in where it yielded, so ``try`` /
``except`` around a ``yield`` reads as it would around a call. :func:`drive`
runs a flow by calling each effect; :func:`adrive` runs the same flow by
awaiting each effect that returns an awaitable. The sync and async services,
gateways and HTTP clients are thin shells over the same flows, the way
hishel keeps a pure core with its I/O at the edges: no rule is written twice.

Two effects exist:

- :class:`Call`: call a function (a store method, a transport's ``handle``);
- :class:`Attempt`: call a provider under a :class:`~commercekit.RetryPolicy`
  (``call`` with ``time.sleep`` in sync code, ``acall`` with ``asyncio.sleep``
  in async code, so async code never blocks the event loop), each attempt
  inside an optional context (a span and a latency timer).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import random
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from contextlib import AbstractContextManager
from types import MappingProxyType
from typing import Any, TypeAlias, TypeVar

import attrs

from commercekit._retry import AsyncSleep, RetryPolicy, Sleep
from commercekit.errors import ConfigurationError

__all__ = ["Attempt", "Call", "Effect", "Flow", "adrive", "call", "drive"]

_T = TypeVar("_T")

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Call:
    """Call ``fn(*args, **kwargs)``; the async driver awaits what it returns if it is awaitable.

    A plain slotted class, not attrs: one is made per store or transport call,
    on every payment's path.
    """

    __slots__ = ("args", "fn", "kwargs")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] = _EMPTY
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"Call({getattr(self.fn, '__qualname__', self.fn)!r})"


@attrs.frozen
class Attempt:
    """Call ``fn()`` under *policy*, each attempt inside ``around()`` when given."""

    fn: Callable[[], Any]
    policy: RetryPolicy
    around: Callable[[], AbstractContextManager[object]] | None = None
    on_retry: Callable[[BaseException], None] | None = None


Effect: TypeAlias = Call | Attempt
Flow: TypeAlias = Generator[Effect, Any, _T]


def call(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Call:
    """The effect of calling *fn* with these arguments."""
    return Call(fn, args, kwargs)


def drive(
    flow: Flow[_T],
    *,
    sleep: Sleep = time.sleep,
    rng: random.Random | None = None,
) -> _T:
    """Run *flow* to its end, calling each effect; return what it returns."""
    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.send(answer) if error is None else flow.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        answer, error = None, None
        try:
            if isinstance(effect, Call):
                answer = effect.fn(*effect.args, **effect.kwargs)
                if inspect.isawaitable(answer):
                    _sync(answer)
            else:
                answer = effect.policy.call(
                    functools.partial(_within, effect),
                    sleep=sleep,
                    rng=rng,
                    on_retry=effect.on_retry,
                )
        except BaseException as exc:  # thrown into the flow, where it yielded
            error = exc


async def adrive(
    flow: Flow[_T],
    *,
    sleep: AsyncSleep | None = None,
    rng: random.Random | None = None,
) -> _T:
    """Run *flow* to its end, awaiting each effect that returns an awaitable.

    *sleep* defaults to ``asyncio.sleep`` (imported here, so sync code never loads asyncio).
    """
    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.send(answer) if error is None else flow.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        answer, error = None, None
        try:
            if isinstance(effect, Call):
                answer = await _awaited(effect.fn(*effect.args, **effect.kwargs))
            else:
                answer = await effect.policy.acall(
                    functools.partial(_awithin, effect),
                    sleep=sleep,
                    rng=rng,
                    on_retry=effect.on_retry,
                )
        except BaseException as exc:
            error = exc


def _sync(value: _T) -> _T:
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()
        raise ConfigurationError(
            "an async store, gateway or transport was given to a sync service or gateway; "
            "use the Async... twin (AsyncPaymentService, AsyncStripeGateway, ...)"
        )
    return value


async def _awaited(value: Awaitable[_T] | _T) -> _T:
    if inspect.isawaitable(value):
        return await value
    return value


def _within(effect: Attempt) -> Any:
    with effect.around() if effect.around is not None else contextlib.nullcontext():
        return _sync(effect.fn())


async def _awithin(effect: Attempt) -> Any:
    with effect.around() if effect.around is not None else contextlib.nullcontext():
        return await _awaited(effect.fn())
