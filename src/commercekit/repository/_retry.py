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

import time
from collections.abc import Callable
from typing import TypeVar

from commercekit._retry import RetryPolicy

__all__ = ["RetryPolicy", "call_with_retries"]

R = TypeVar("R")


def call_with_retries(
    fn: Callable[[], R],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[], None],
    sleep: Callable[[float], None] = time.sleep,
) -> R:
    """Call *fn*; while it raises a transient error, wait and call it again, up to policy."""
    return policy.call(fn, sleep=sleep, on_retry=lambda _exc: on_retry())
