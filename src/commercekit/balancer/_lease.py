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

    __slots__ = ("_held", "_member", "_pool", "node")

    def __init__(self, pool: Pool, member: Member) -> None:
        self._pool = pool
        self._member = member
        self._held = [None]  # emptied by the one release that counts: list.pop() is atomic
        self.node: str = member.name
        """The node the request should go to."""

    @property
    def released(self) -> bool:
        """Whether the lease has been released."""
        return not self._held

    def release(self) -> None:
        """Give the slot back (once; later calls do nothing)."""
        try:
            self._held.pop()
        except IndexError:
            return  # released before
        # The one place leases are given back (Pool._lease takes them); no lock needed.
        pool, member = self._pool, self._member
        member.leases.pop()
        pool._leases.pop()
        if pool._counting and member.instruments is not None:
            member.instruments.in_flight.add(-1)

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
        state = "held" if self._held else "released"
        return f"<Lease {self.node!r} {state}>"
