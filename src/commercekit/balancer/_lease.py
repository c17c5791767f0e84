"""A lease on a node: one request in flight, released exactly once."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._member import Member
    from ._pool import Pool

__all__ = ["Lease"]


class Lease:
    """One request in flight on :attr:`node`, from ``acquire()`` or ``acquire_node()``; release it.

    Use it as a context manager, which releases on exit whether the block
    returns or raises::

        with balancer.acquire("customer-42") as lease:
            send(lease.node, request)

    Releasing twice is harmless. Report the outcome through the lease
    (:meth:`report_failure`, :meth:`report_success`) to feed outlier
    detection; it works even if the node was removed meanwhile.
    """

    __slots__ = ("_member", "_pool", "_released", "node")

    def __init__(self, pool: Pool, member: Member) -> None:
        self._pool = pool
        self._member = member
        self._released = False
        self.node: str = member.name
        """The node the request should go to."""

    @property
    def released(self) -> bool:
        """Whether the lease has been released."""
        return self._released

    def release(self) -> None:
        """Give the slot back (once; later calls do nothing)."""
        if not self._released:
            self._pool._release(self, self._member)

    def report_failure(self) -> None:
        """Count a failed request on the node toward outlier ejection."""
        self._pool._failure(self._member)

    def report_success(self) -> None:
        """Reset the node's run of consecutive failures."""
        self._member.failures = 0

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<Lease {self.node!r} {state}>"
