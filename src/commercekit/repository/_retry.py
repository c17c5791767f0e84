"""Retrying transient failures, only where a retry is safe, with the one shared RetryPolicy.

Safe means: read-only work, or a whole unit of work the caller marked
retryable (its function runs again from the start, in a new transaction).
Never a single statement of a transaction, and never a commit whose outcome
is unknown (:class:`~commercekit.errors.OutcomeUnknownError` is not transient).
The policy itself is commercekit's one :class:`~commercekit._retry.RetryPolicy`
(tenacity underneath, ``Retry-After`` honoured), the same class as
``commercekit.payments.RetryPolicy``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from commercekit._retry import RetryPolicy
from commercekit.errors import is_transient

__all__ = ["RetryPolicy", "call_with_retries"]

P = ParamSpec("P")
R = TypeVar("R")


def call_with_retries(
    policy: RetryPolicy,
    on_retry: Callable[[], None],
    sleep: Callable[[float], None],
    fn: Callable[P, R],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> R:
    """Call *fn* with the arguments; while it raises a transient error, call it again, up to policy.

    :meth:`RetryPolicy.call`, with the first attempt run here and its
    arguments passed on: every routed read and every retried unit of work
    goes through it, and the common path (the first attempt served) costs
    this one frame, with no closure built for it.
    """
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        if policy.attempts < 2 or not is_transient(exc):
            raise
        first: BaseException = exc
    return policy._again(
        functools.partial(fn, *args, **kwargs), first, sleep=sleep, on_retry=lambda _exc: on_retry()
    )
