"""What every keyed (consistent-hash) balancer does the same way, whatever its placement.

A placement supplies :meth:`KeyedPool.pick` (its hot path) and
:meth:`KeyedPool._walk`, the key's candidate nodes in preference order. From
that walk this class derives the rest, so that they always agree with
``pick``:

- the reroute when the key's first node is out of service (its next node in
  service takes it: only that node's keys move, and they come back when it
  recovers);
- ``pick_n``: the first *n* distinct nodes in service, in preference order;
- ``acquire``: bounded loads (Mirrokni, Thorup and Zadimoghaddam, 2016): the
  first node in preference order whose leases are under
  ``ceil(c * (in_flight + 1) * weight / total weight)``.

A walk is bounded; past its end, the remaining nodes follow in rendezvous
order (highest ``xxh3(key, seed=node)`` first), so every node is reachable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from commercekit.errors import InvalidInputError, UnavailableError

from ._placement._hashing import key_bytes, node_hash, xxh3_64_intdigest
from ._pool._base import Pool
from ._pool._health import NodeHealth
from ._pool._lease import Lease
from ._pool._member import Member
from ._pool._options import check_balance_factor
from ._shown import shown
from ._typing import Key

__all__ = ["KeyedPool"]


class KeyedPool(Pool):
    """A consistent-hash balancer; subclasses place keys, this class does the rest."""

    _balance_factor: float
    _uncounted_pick: Callable[[Key], str]
    # A lookup-table placement (TablePool) sets these three: acquire() then reads the key's
    # first candidate inline, as pick() does, instead of calling _first() (a third of a
    # pick). A ring placement leaves _slots None.
    _slots: list[Member] | None = None
    _size: int
    _hash: Callable[..., int]

    def _init_keyed(self, balance_factor: float) -> None:
        """Finish construction: validate *balance_factor*, and count picks if metrics are on."""
        self._balance_factor = check_balance_factor(balance_factor)
        if self._counting:
            # Count picks only when someone records them: with NullMetrics, pick() keeps
            # its bare hot path (a counter call would cost a third of a pick).
            self._uncounted_pick = self.pick
            self.pick = self._counted_pick  # type: ignore[method-assign]

    def _counted_pick(self, key: Key) -> str:
        self._instruments.picks.inc()
        return self._uncounted_pick(key)

    # --- supplied by the placement --------------------------------------------------------

    def pick(self, key: Key) -> str:
        """The node for *key*: its first node in service."""
        raise NotImplementedError

    def _walk(self, data: bytes) -> tuple[float, Iterator[Member]]:
        """The key's slow-start coordinate in ``[0, 1)`` and its candidates, best first.

        Candidates may repeat and may be out of service; the walk is finite.
        """
        raise NotImplementedError

    def _first(self, data: bytes) -> Member | None:
        """The key's first candidate, in service or not (``acquire``'s hot path).

        The first member :meth:`_walk` yields; a placement may find it faster.
        """
        return next(self._walk(data)[1], None)

    # --- derived from the walk ------------------------------------------------------------

    def _preferred(self, data: bytes) -> Iterator[Member]:
        """The distinct nodes that take *data* now, best first; in panic, every member."""
        u, walk = self._walk(data)
        panic = self._panic
        seen: set[int] = set()
        for member in walk:
            if id(member) in seen:
                continue
            if member.ok or (member.live if panic else self._admits(member, u)):
                seen.add(id(member))
                yield member
        rest = [m for m in list(self._members.values()) if id(m) not in seen]
        rest.sort(key=lambda m: xxh3_64_intdigest(data, node_hash(m.name, 0)), reverse=True)
        found = bool(seen)
        for member in rest:
            if member.ok or (member.live if panic else self._admits(member, u)):
                found = True
                yield member
        if not found:
            # Every node in service is warming up and none takes this key yet: give it to
            # them anyway rather than to nobody.
            yield from (m for m in rest if m.live and m.health is NodeHealth.UP)

    def _reroute(self, data: bytes) -> str:
        """The slow path of ``pick``: the key's first node was not fully in service."""
        self._instruments.reroutes.inc()
        for member in self._preferred(data):
            return member.name
        raise self._unavailable()

    def _unavailable(self) -> UnavailableError:
        if not self._members:
            return UnavailableError(
                f"balancer {self._name!r} has no nodes; add one with add() before picking"
            )
        return UnavailableError(
            f"none of the {len(self._members)} nodes of balancer {self._name!r} is in service "
            f"(panic mode is off below panic_threshold={self._panic_threshold}); retry shortly"
        )

    def pick_n(self, key: Key, n: int) -> list[str]:
        """Up to *n* distinct nodes in service for *key*, in preference order (replica sets).

        The first is ``pick(key)``. Fewer than *n* come back when fewer are in service.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidInputError(f"n must be an int of at least 1, got {shown(n)}")
        if n > len(self._members):
            raise InvalidInputError(
                f"asked for {shown(n)} distinct nodes but balancer {self._name!r} has "
                f"{len(self._members)}"
            )
        chosen: list[str] = []
        for member in self._preferred(key_bytes(key)):
            chosen.append(member.name)
            if len(chosen) == n:
                break
        if not chosen:
            raise self._unavailable()
        return chosen

    def acquire(self, key: Key) -> Lease:
        """A lease on the key's first node in service whose leases are under its cap.

        The cap of a node of weight *w* is ``ceil(c * (in_flight + 1) * w / W)``, with *c*
        the balancer's ``balance_factor`` and *W* the weight in service; with equal
        weights, ``ceil(c * mean)`` counting this request. Release the lease (or use it as
        a context manager) when the request ends.
        """
        try:
            data = key.encode()  # type: ignore[union-attr]
        except (AttributeError, UnicodeEncodeError):
            data = key_bytes(key)  # not a str, or not valid Unicode: a typed error
        factor = self._balance_factor
        ledger = self._ledger
        slots = self._slots
        first = self._first(data) if slots is None else slots[self._hash(data) % self._size]
        if first is not None and first.serving is not None:
            # The hot path, without the lock: the key's own node is fully in service. Take
            # the lease first, then check the cap counting it (k < ceil(x) iff k < x for an
            # int k); over the cap, give it back and walk under the lock. Two acquires racing
            # for one node each see the other's lease, so neither can pass the cap. A node
            # holding no other lease is under any cap (every cap is at least 1), so k == 0
            # skips the float arithmetic, a fifth of the hot path.
            mine, everyone = first.leases, ledger.held
            mine.append(None)
            everyone.append(None)
            k = len(mine) - 1
            if k == 0 or k < factor * len(everyone) * first.weight / self._lease_weight:
                if self._counting:
                    self._instruments.picks.inc()
                    if first.instruments is not None:
                        first.instruments.in_flight.add(1)
                return ledger.lease(first)
            mine.pop()
            everyone.pop()
        with self._lock:
            demand = factor * (len(ledger.held) + 1)
            weight = self._total_weight if self._panic else self._up_weight
            weight = max(weight, 1e-12)
            spilled = False
            fallback: Member | None = None
            for member in self._preferred(data):
                if member.in_flight < math.ceil(demand * member.weight / weight):
                    if spilled:
                        self._instruments.spills.inc()
                    if self._counting:
                        self._instruments.picks.inc()
                    return ledger.take(member)
                spilled = True
                if fallback is None or (
                    member.in_flight / member.weight < fallback.in_flight / fallback.weight
                ):
                    fallback = member
            if fallback is None:
                raise self._unavailable()
            self._instruments.spills.inc()
            return ledger.take(fallback)

    @property
    def balance_factor(self) -> float:
        """The bounded-load factor *c* of :meth:`acquire`."""
        return self._balance_factor
