"""Whole units of work run to commit, again on a transient failure where that is safe.

The one copy of ``Database.run``'s loop; the asyncio twin runs it in a
greenlet, with its own units of work and its sleep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import attrs

from commercekit.repository._retry import RetryPolicy, call_with_retries

from ._uow import UnitOfWork

__all__ = ["Committed", "run_attempts"]

R = TypeVar("R")


@attrs.frozen
class Committed(Generic[R]):
    """What :meth:`Database.run` returns: the work's value and the unit of work it ran in."""

    value: R
    unit_of_work: UnitOfWork = attrs.field(repr=False)

    @property
    def token(self) -> str | None:
        """The consistency token of the commit (None for read-only work without a token)."""
        return self.unit_of_work.token


def run_attempts(
    make: Callable[[frozenset[str]], UnitOfWork],
    once: Callable[[UnitOfWork], R],
    *,
    retrying: bool,
    policy: RetryPolicy,
    on_retry: Callable[[], None],
    sleep: Callable[[float], None],
) -> R:
    """Call *once* with a unit of work from *make*; with *retrying*, again while transient.

    *once* runs the work in the unit of work it is given, from ``with`` to
    commit. Each attempt's unit of work avoids the replicas earlier attempts
    lost (*make* gets their names), even those the balancer has not ejected yet.
    """
    if not retrying:
        return once(make(frozenset()))
    avoid: frozenset[str] = frozenset()

    def attempt() -> R:
        nonlocal avoid
        uow = make(avoid)
        try:
            return once(uow)
        finally:
            avoid = uow._avoid

    return call_with_retries(policy, on_retry, sleep, attempt)
