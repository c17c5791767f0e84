"""Retrying transient failures with tenacity, only where a retry is safe.

Safe means: read-only work, or a whole unit of work the caller marked
retryable (its function runs again from the start, in a new transaction).
Never a single statement of a transaction, and never a commit whose outcome
is unknown (:class:`~commercekit.errors.OutcomeUnknownError` is not transient).
The first attempt runs without tenacity, so the common path costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import attrs
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from commercekit.errors import ConfigurationError, is_transient

__all__ = ["RetryPolicy", "call_with_retries"]

R = TypeVar("R")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried (immutable)."""

    attempts: int = 3
    """Attempts in all, the first included (1: never retry)."""
    initial_wait_s: float = 0.01
    max_wait_s: float = 0.5

    def __attrs_post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigurationError(f"attempts must be >= 1, got {self.attempts!r}")


def call_with_retries(
    fn: Callable[[], R],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[], None],
    sleep: Callable[[float], None] = time.sleep,
) -> R:
    """Call *fn*; while it raises a transient error, wait and call it again, up to policy."""
    try:
        return fn()
    except Exception as exc:
        if policy.attempts < 2 or not is_transient(exc):
            raise
    on_retry()
    sleep(policy.initial_wait_s)
    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts - 1),
        retry=retry_if_exception(is_transient),
        wait=wait_exponential(multiplier=policy.initial_wait_s, max=policy.max_wait_s)
        + wait_random(0, policy.initial_wait_s),
        sleep=sleep,
        before_sleep=lambda _state: on_retry(),
        reraise=True,
    )
    return retrying(fn)
