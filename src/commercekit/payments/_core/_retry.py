"""RetryPolicy: when the payment service tries a provider call again, and how long it waits.

Only errors that are safe to retry are retried: :func:`commercekit.errors.is_transient`
says yes for a refused connection, a reset *before* the request was written,
HTTP 429 and a 409 for a key in flight, because in each case the provider did
nothing. A read error or a timeout *after* the request was sent is never
retried as it is: the provider may have acted (charged the card), so the
service looks the operation up first (see ``PaymentService``). Every retry
reuses the idempotency key of the first attempt.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import TypeVar

import attrs
import tenacity

from commercekit.errors import ConfigurationError, is_transient
from commercekit.money._currency import shown
from commercekit.payments._typing import Sleep

__all__ = ["RetryPolicy"]

_T = TypeVar("_T")


def _positive(instance: RetryPolicy, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ConfigurationError(
            f"RetryPolicy.{attribute.name} is a finite number, not negative: {shown(value)}"
        )


@attrs.frozen
class RetryPolicy:
    """An immutable retry policy: attempts, exponential backoff with full jitter, a cap.

    A provider's ``Retry-After`` (an error's ``retry_after_s``) is honoured
    up to *max_delay_s*.
    """

    max_attempts: int = 4
    base_delay_s: float = attrs.field(default=0.05, validator=_positive)
    max_delay_s: float = attrs.field(default=2.0, validator=_positive)
    max_reconcile_rounds: int = 3
    """How often an unknown outcome is looked up and, when absent, sent again."""

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_reconcile_rounds < 1:
            raise ConfigurationError("RetryPolicy needs max_attempts and max_reconcile_rounds >= 1")

    def delay_s(self, attempt: int, exc: BaseException | None, rng: random.Random) -> float:
        """The wait before retry number *attempt* (1 for the first retry) after *exc*."""
        hinted = getattr(exc, "retry_after_s", None)
        if isinstance(hinted, int | float) and hinted > 0:
            return min(float(hinted), self.max_delay_s)
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return rng.uniform(0, ceiling)

    def call(
        self,
        work: Callable[[], _T],
        *,
        sleep: Sleep,
        rng: random.Random,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> _T:
        """Run *work*, retrying transient errors only; the last error is raised as it is."""

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            return self.delay_s(state.attempt_number, exc, rng)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if on_retry is not None and state.outcome is not None:
                exc = state.outcome.exception()
                if exc is not None:
                    on_retry(exc)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_transient),
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=wait,
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(work)
