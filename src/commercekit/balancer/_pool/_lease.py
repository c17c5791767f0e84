"""Leases: one request in flight on a node, released exactly once, and the ledger of them.

A :class:`LeaseLedger` is all a balancer and its leases share: the count of
leases held (balancer-wide, beside each ``Member.leases``), whether the
``in_flight`` gauges are recorded, and where a failure reported through a
lease goes. A :class:`Lease` knows its ledger and its member, never the
balancer, and the balancer takes and counts leases only through its ledger.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._member import Member

__all__ = ["Lease", "LeaseLedger"]

_new = object.__new__


class LeaseLedger:
    """The leases held on one balancer's nodes.

    *counting* says whether each node's ``in_flight`` gauge is moved (only when
    metrics are recorded); *on_failure* receives the member a lease reports a
    failed request for (the balancer's outlier detection).
    """

    __slots__ = ("_on_failure", "counting", "held")

    def __init__(self, *, counting: bool, on_failure: Callable[[Member], None]) -> None:
        self.held: deque[None] = deque()
        """One item per lease held, as ``Member.leases`` (``deque`` appends and pops are atomic)."""
        self.counting = counting
        self._on_failure = on_failure

    def __len__(self) -> int:
        return len(self.held)

    def take(self, member: Member) -> Lease:
        """Count a new lease on *member* (moving its gauge) and return it.

        A hot path may append to ``member.leases`` and :attr:`held` itself, check
        a cap, move the gauge, and then make the lease with :meth:`lease`.
        """
        member.leases.append(None)
        self.held.append(None)
        if self.counting and member.instruments is not None:
            member.instruments.in_flight.add(1)
        return self.lease(member)

    def lease(self, member: Member) -> Lease:
        """The :class:`Lease` on *member* for a slot already counted (see :meth:`take`).

        Made without ``Lease.__init__``: in CPython 3.11, calling a class whose
        ``__init__`` is Python code costs a third of ``acquire()``'s hot path, a
        method call a fraction of that (benchmarks/balancer.py, acquire).
        """
        lease = _new(Lease)
        lease._ledger = self
        lease._member = member
        lease._held = True
        lease.node = member.name
        return lease

    def failed(self, member: Member) -> None:
        """A request on *member* failed: tell the balancer's outlier detection."""
        self._on_failure(member)


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

    __slots__ = ("_held", "_ledger", "_member", "node")

    def __init__(self, ledger: LeaseLedger, member: Member) -> None:
        # As LeaseLedger.lease() makes one (the balancers make theirs there).
        self._ledger = ledger
        self._member = member
        # Deleted by the one release that counts: deleting a slot is one step under the
        # GIL, and a second delete raises AttributeError. No object to allocate per lease.
        self._held = True
        self.node: str = member.name
        """The node the request should go to."""

    @property
    def released(self) -> bool:
        """Whether the lease has been released."""
        return not hasattr(self, "_held")

    def release(self) -> None:
        """Give the slot back (once; later calls do nothing)."""
        try:
            del self._held
        except AttributeError:
            return  # released before
        # The one place leases are given back (LeaseLedger.take counts them); inline, as
        # release is on every request's path. No lock needed: deque pops are atomic.
        member, ledger = self._member, self._ledger
        member.leases.pop()
        ledger.held.pop()
        if ledger.counting and member.instruments is not None:
            member.instruments.in_flight.add(-1)

    def report_failure(self) -> None:
        """Count a failed request on the node toward outlier ejection."""
        self._ledger.failed(self._member)

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
        state = "released" if self.released else "held"
        return f"<Lease {self.node!r} {state}>"
