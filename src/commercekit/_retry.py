"""RetryPolicy: the one retry vocabulary of commercekit, sync and asyncio, over tenacity.

Every part that retries (the repository's units of work and reads, the
payment service's provider calls and lookups) takes this one immutable
policy. Only errors that are safe to retry are retried:
:func:`commercekit.errors.is_transient` says yes for a refused connection, a
reset *before* the request was written, HTTP 429, a 409 for a key in flight
or a serialization failure, because in each case nothing happened. An error
whose outcome is unknown (a read error or a timeout *after* the request was
sent, a commit whose answer was lost) is never transient: the caller looks it
up first.

Waits are exponential with full jitter, capped at :attr:`RetryPolicy.max_wait_s`;
an error that carries a ``retry_after_s`` (a provider's ``Retry-After``, a
key's lease) is waited out instead, up to the same cap. :meth:`RetryPolicy.call`
sleeps with the given ``sleep`` (``time.sleep``); :meth:`RetryPolicy.acall`
awaits ``asyncio.sleep`` and never blocks the event loop. The first attempt
runs without tenacity, so the common path costs one function call. asyncio is
imported by :meth:`RetryPolicy.acall` only, so sync code never loads it.

:class:`RetryPolicy`'s defaults are the repository's (3 attempts, 0.01 s to
0.5 s); ``commercekit.payments.RetryPolicy`` is a subclass with the payment
service's (4 attempts, 0.05 s to 2 s), the defaults it always had.
"""

from __future__ import annotations

import inspect
import math
import random
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs
import tenacity

from commercekit.errors import ConfigurationError, is_transient
from commercekit.typing import AsyncSleep, Sleep

__all__ = [
    "AsyncSleep",
    "RetryPolicy",
    "Sleep",
    "async_sleep",
    "at_least_one",
    "seconds",
    "sync_sleep",
]

_T = TypeVar("_T")

# The payment service's names before the two policies became one: still taken, with a warning.
_RENAMED = {
    "max_attempts": "attempts",
    "base_delay_s": "initial_wait_s",
    "max_delay_s": "max_wait_s",
}


def seconds(instance: RetryPolicy, attribute: attrs.Attribute[float], value: float) -> None:
    """The validator of a wait: a finite number of seconds, not negative."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ConfigurationError(
            f"RetryPolicy.{attribute.name} is a finite number of seconds, not negative: "
            f"{type(value).__name__}"
        )


def at_least_one(instance: RetryPolicy, attribute: attrs.Attribute[int], value: int) -> None:
    """The validator of a count: an int, 1 or more."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"RetryPolicy.{attribute.name} must be an int >= 1, not {value!r}")


def _renamed(old: str) -> None:
    warnings.warn(
        f"RetryPolicy.{old} is deprecated; use {_RENAMED[old]}", DeprecationWarning, stacklevel=3
    )


@attrs.frozen(init=False)
class RetryPolicy:
    """An immutable retry policy: attempts, exponential backoff with full jitter, a cap.

    *attempts* counts the first one (1: never retry). The wait before retry
    *n* is uniform in ``[0, min(max_wait_s, initial_wait_s * 2**(n-1))]``,
    unless the error names a ``retry_after_s``, which is honoured up to
    *max_wait_s*. *max_reconcile_rounds* is how often the payment service
    looks an unknown outcome up and, when the provider never saw it, sends it
    again. The payment service's former names ``max_attempts``,
    ``base_delay_s`` and ``max_delay_s`` still work, with a DeprecationWarning.
    """

    attempts: int = attrs.field(default=3, validator=at_least_one)
    initial_wait_s: float = attrs.field(default=0.01, validator=seconds)
    max_wait_s: float = attrs.field(default=0.5, validator=seconds)
    max_reconcile_rounds: int = attrs.field(default=3, validator=at_least_one)

    def __init__(self, **kwargs: Any) -> None:
        used = [old for old in _RENAMED if old in kwargs]
        if used:
            warnings.warn(
                "RetryPolicy("
                + ", ".join(f"{old}=" for old in used)
                + ") is deprecated; use "
                + ", ".join(f"{_RENAMED[old]}=" for old in used),
                DeprecationWarning,
                stacklevel=2,
            )
        for old in used:
            if _RENAMED[old] in kwargs:
                raise ConfigurationError(f"RetryPolicy takes {_RENAMED[old]} or {old}, not both")
            kwargs[_RENAMED[old]] = kwargs.pop(old)
        self.__attrs_init__(**kwargs)

    @property
    def max_attempts(self) -> int:
        """Deprecated: :attr:`attempts`."""
        _renamed("max_attempts")
        return self.attempts

    @property
    def base_delay_s(self) -> float:
        """Deprecated: :attr:`initial_wait_s`."""
        _renamed("base_delay_s")
        return self.initial_wait_s

    @property
    def max_delay_s(self) -> float:
        """Deprecated: :attr:`max_wait_s`."""
        _renamed("max_delay_s")
        return self.max_wait_s

    def wait_s(self, retry: int, exc: BaseException | None, rng: random.Random) -> float:
        """The wait before retry number *retry* (1 for the first retry) after *exc*."""
        hinted = getattr(exc, "retry_after_s", None)
        if isinstance(hinted, int | float) and not isinstance(hinted, bool) and hinted > 0:
            return min(float(hinted), self.max_wait_s)
        ceiling = min(self.max_wait_s, self.initial_wait_s * 2 ** (retry - 1))
        return rng.uniform(0, ceiling)

    def delay_s(self, attempt: int, exc: BaseException | None, rng: random.Random) -> float:
        """Deprecated: :meth:`wait_s`, the same answer (the payment policy's former name)."""
        warnings.warn(
            "RetryPolicy.delay_s() is deprecated; use wait_s()", DeprecationWarning, stacklevel=2
        )
        return self.wait_s(attempt, exc, rng)

    def call(
        self,
        work: Callable[[], _T],
        *,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> _T:
        """Run *work*, retrying transient errors only; the last error is raised as it is."""
        try:
            return work()
        except Exception as exc:
            if self.attempts < 2 or not is_transient(exc):
                raise
            first: BaseException = exc
        return self._again(work, first, sleep=sleep, rng=rng, on_retry=on_retry)

    def _again(
        self,
        work: Callable[[], _T],
        first: BaseException,
        *,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> _T:
        """:meth:`call` from its first retry, after *work*'s first attempt raised *first*.

        For a caller that runs the first attempt itself, to spare the common
        path a frame: *first* must be an error :meth:`call` retries (the
        policy allows a second attempt and it is transient).
        """
        sleep = sync_sleep(sleep, owner="RetryPolicy.call")
        rng = rng if rng is not None else random.Random()
        if on_retry is not None:
            on_retry(first)
        sleep(self.wait_s(1, first, rng))
        retrying = tenacity.Retrying(**self._options(rng, on_retry), sleep=sleep)
        return retrying(work)

    async def acall(
        self,
        work: Callable[[], Awaitable[_T]],
        *,
        sleep: AsyncSleep | None = None,
        rng: random.Random | None = None,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> _T:
        """:meth:`call` for asyncio: *work* is awaited, and so is every wait.

        *sleep* defaults to ``asyncio.sleep``.
        """
        try:
            return await work()
        except Exception as exc:
            if self.attempts < 2 or not is_transient(exc):
                raise
            first: BaseException = exc
        if sleep is None:
            import asyncio

            sleep = asyncio.sleep
        sleep = async_sleep(sleep, owner="RetryPolicy.acall")
        rng = rng if rng is not None else random.Random()
        if on_retry is not None:
            on_retry(first)
        await sleep(self.wait_s(1, first, rng))
        retrying = tenacity.AsyncRetrying(**self._options(rng, on_retry), sleep=sleep)
        return await retrying(work)

    def _options(
        self, rng: random.Random, on_retry: Callable[[BaseException], None] | None
    ) -> dict[str, Any]:
        """tenacity's options for the attempts after the first (which ran without it)."""

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            return self.wait_s(state.attempt_number + 1, exc, rng)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if on_retry is not None and state.outcome is not None:
                exc = state.outcome.exception()
                if exc is not None:
                    on_retry(exc)

        return {
            "retry": tenacity.retry_if_exception(is_transient),
            "stop": tenacity.stop_after_attempt(self.attempts - 1),
            "wait": wait,
            "before_sleep": before_sleep,
            "reraise": True,
        }


def _named(sleep: object) -> str:
    return str(getattr(sleep, "__qualname__", type(sleep).__name__))


def async_sleep(sleep: object, *, owner: str) -> AsyncSleep:
    """*sleep* checked as an async sleep: :class:`ConfigurationError` if it cannot be one.

    Anything not callable and a builtin (``time.sleep``) are refused at once.
    Another callable that is no coroutine function may still return an
    awaitable (``lambda s: asyncio.sleep(s)``): it is wrapped, and its first
    call that returns none raises, before anything is tried again (awaiting
    ``None`` would raise ``TypeError`` instead).
    """
    wanted = (
        f"{owner}'s sleep= must be an async sleep (a coroutine function such as "
        "asyncio.sleep, or a callable that returns an awaitable)"
    )
    if not callable(sleep):
        raise ConfigurationError(f"{wanted}, not {_named(sleep)}")
    call: Callable[[float], Any] = sleep
    if inspect.isbuiltin(call):  # time.sleep: never an awaitable
        raise ConfigurationError(f"{wanted}, not {_named(call)}")
    if inspect.iscoroutinefunction(call):
        return call

    async def checked(seconds: float) -> None:
        waited = call(seconds)
        if not inspect.isawaitable(waited):
            raise ConfigurationError(
                f"{wanted}: {_named(call)} returned {type(waited).__name__}, not an awaitable"
            )
        await waited

    return checked


def sync_sleep(sleep: object, *, owner: str) -> Sleep:
    """*sleep* checked as a sync sleep: :class:`ConfigurationError` if it is an async one.

    A coroutine function is refused at once; another callable is wrapped, and
    its first call that returns an awaitable raises (the awaitable is closed:
    it would never be awaited, and the wait never happen).
    """
    wanted = f"{owner}'s sleep= must be a sync sleep (such as time.sleep)"
    if not callable(sleep) or inspect.iscoroutinefunction(sleep):
        raise ConfigurationError(f"{wanted}, not {_named(sleep)}: use the asyncio twin for that")
    call: Callable[[float], Any] = sleep
    if inspect.isbuiltin(call):  # time.sleep, list.append: no awaitable comes back
        return call

    def checked(seconds: float) -> None:
        waited = call(seconds)
        if inspect.isawaitable(waited):
            if inspect.iscoroutine(waited):
                waited.close()
            raise ConfigurationError(f"{wanted}: {_named(call)} returned an awaitable")

    return checked
