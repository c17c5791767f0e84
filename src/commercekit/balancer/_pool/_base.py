"""The machinery every balancer shares: membership, the health overlay, ejection, slow start.

A subclass supplies the placement: it builds its lookup table in
:meth:`Pool._build` (called off the lock after every membership change, from a
snapshot of the members) and reads ``Member.serving`` on its hot path.
Everything else lives here:

- membership (add, remove, reweight, reconcile), each change one build;
- health as an overlay on the table: a flip writes ``Member.serving`` and moves a
  few counters, and rebuilds nothing;
- passive outlier detection (consecutive failures eject for a time that grows
  with repeated ejections, :mod:`._ejection`) and slow start (a share that grows
  with time, :mod:`._slow_start`), both read from the injected clock, never from
  a timer thread;
- panic mode: below *panic_threshold* of the weight in service, picks ignore
  health and spread over every node;
- leases, the placement's own (``acquire()``) and the caller's choice
  (:meth:`Pool.acquire_node`), counted in a :class:`LeaseLedger` that is all the
  pool and its leases share.

Mutations take one re-entrant lock; picks take none. Health flips and leases
never wait on a build (see :meth:`Pool._settle`).
"""

# Longer than 400 lines because membership, the health overlay and the lease entry points
# share one lock and one set of health totals that picks read without it: kept in one class,
# every write to them can be checked against that rule in one place. Ejection, slow start
# and lease accounting, which need no lock of their own, live in their own modules.

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from commercekit.balancer._shown import shown
from commercekit.errors import (
    DuplicateError,
    InvalidInputError,
    NotFoundError,
)
from commercekit.metrics import Metrics, NullMetrics
from commercekit.typing import MonotonicClock

from ._ejection import ejects, out_of_service, start_ejection
from ._health import NodeHealth, can_transition, transition
from ._instruments import BalancerInstruments, NodeInstruments
from ._lease import Lease, LeaseLedger
from ._member import Member, Nodes, NodeStatus, check_name, check_weight, parse_nodes
from ._options import OutlierDetection, SlowStart, check_panic_threshold
from ._slow_start import current_share, warm_share

__all__ = ["Pool"]

_UP = NodeHealth.UP
_DOWN = NodeHealth.DOWN
_EJECTED = NodeHealth.EJECTED


class Pool:
    """Membership, health, ejection, slow start and leases; a placement subclasses it."""

    def __init__(
        self,
        *,
        name: str,
        metrics: Metrics | None,
        clock: MonotonicClock,
        panic_threshold: float,
        outlier_detection: OutlierDetection | None,
        slow_start: SlowStart | None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"a balancer name must be a non-empty str, got {shown(name)}")
        self._name = name
        self._metrics: Metrics = NullMetrics() if metrics is None else metrics
        self._counting = not isinstance(self._metrics, NullMetrics)
        self._clock = clock
        self._panic_threshold = check_panic_threshold(panic_threshold)
        self._outlier = outlier_detection
        self._slow_start = slow_start
        self._lock = threading.RLock()
        self._build_lock = threading.Lock()
        self._generation = 0
        self._installed = 0
        self._members: dict[str, Member] = {}
        self._ledger = LeaseLedger(counting=self._counting, on_failure=self._failure)
        self._up_count = 0
        self._up_weight = 0.0
        self._total_weight = 0.0
        self._ejected = 0
        self._panic = False
        self._lease_weight = 1e-12
        """The weight bounded loads divide by: in service (all of it in panic), never 0."""
        self._instruments = BalancerInstruments.create(self._metrics, name)

    # --- placement hooks ------------------------------------------------------------------

    def _build(self, members: list[tuple[Member, float]]) -> Callable[[], None]:
        """Build the placement for *members* and their weights, in the order they were added.

        Called off the lock, so that health flips, leases and picks go on while a
        slow placement builds; it must read nothing but its argument. Returns a
        function that installs what was built, which is called under the lock.
        """
        raise NotImplementedError

    def _check_weights(self, weights: list[float]) -> None:
        """Raise ``ConfigurationError`` if the placement cannot hold nodes of *weights*.

        Called before a membership change, which then does not happen.
        """

    def _changed(self) -> int:
        """Note a membership change (under the lock): recount health, return its generation."""
        self._recount()
        self._generation += 1
        return self._generation

    def _settle(self, generation: int) -> None:
        """Build and install the placement for *generation* or a later one; then return.

        Builds run one at a time, off the balancer's lock, each for the newest
        membership at its start; a call whose change a finished build already
        covers returns at once. So ``add()`` returns once picks can reach the
        node, and concurrent changes cost one build each at most.
        """
        with self._build_lock:
            with self._lock:
                if self._installed >= generation:
                    return
                generation = self._generation
                members = [(m, m.weight) for m in self._members.values()]
            start = time.perf_counter()
            install = self._build(members)
            elapsed = time.perf_counter() - start
            with self._lock:
                install()
                self._installed = generation
            self._instruments.rebuild.record(elapsed)

    # --- membership -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The balancer's name, the ``balancer`` tag of its metrics."""
        return self._name

    def _populate(self, nodes: Nodes) -> None:
        """Add the initial nodes, fully warm, with one rebuild (the subclass's last init step)."""
        parsed = parse_nodes(nodes)
        self._check_weights(list(parsed.values()))
        with self._lock:
            for node, weight in parsed.items():
                self._members[node] = self._new_member(node, weight, warm=False)
            generation = self._changed()
        self._settle(generation)

    def _new_member(self, name: str, weight: float, *, warm: bool) -> Member:
        member = Member(name, weight, NodeInstruments.create(self._metrics, self._name, name))
        if warm and self._slow_start is not None:
            member.serving = None
            member.warm_since = self._clock()
        return member

    def add(self, name: str, weight: float = 1.0) -> None:
        """Add node *name* with *weight* (a positive number; shares follow weights).

        Raises :class:`~commercekit.errors.DuplicateError` if it is already a member.
        With slow start, the node takes its share gradually.
        """
        check_name(name)
        weight = check_weight(name, weight)
        with self._lock:
            if name in self._members:
                raise DuplicateError(
                    f"node {shown(name)} is already in balancer {self._name!r}; "
                    f"use set_weight() to change its weight"
                )
            self._check_weights([*(m.weight for m in self._members.values()), weight])
            self._members[name] = self._new_member(name, weight, warm=True)
            generation = self._changed()
        self._settle(generation)

    def remove(self, name: str) -> None:
        """Remove node *name*; only its keys move, to their next node."""
        with self._lock:
            member = self._get(name)
            self._check_weights([m.weight for m in self._members.values() if m is not member])
            member.serving = None
            member.live = False
            del self._members[name]
            generation = self._changed()
        self._settle(generation)

    def set_weight(self, name: str, weight: float) -> None:
        """Change the weight of node *name*."""
        weight = check_weight(name, weight)
        with self._lock:
            member = self._get(name)
            if member.weight == weight:
                return
            self._check_weights(
                [weight if m is member else m.weight for m in self._members.values()]
            )
            member.weight = weight
            generation = self._changed()
        self._settle(generation)

    def update(self, nodes: Nodes) -> None:
        """Make the membership exactly *nodes*: add, remove and reweight, with one rebuild."""
        wanted = parse_nodes(nodes)
        self._check_weights(list(wanted.values()))
        with self._lock:
            changed = False
            for name in [n for n in self._members if n not in wanted]:
                member = self._members.pop(name)
                member.serving = None
                member.live = False
                changed = True
            for name, weight in wanted.items():
                current = self._members.get(name)
                if current is None:
                    self._members[name] = self._new_member(name, weight, warm=True)
                    changed = True
                elif current.weight != weight:
                    current.weight = weight
                    changed = True
            if not changed:
                return
            generation = self._changed()
        self._settle(generation)

    def node_names(self) -> list[str]:
        """Every member's name, in the order they were added."""
        return list(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def _get(self, name: str) -> Member:
        try:
            return self._members[name]
        except (KeyError, TypeError):
            known = ", ".join(repr(n) for n in list(self._members)[:10]) or "none"
            raise NotFoundError(
                f"no node {shown(name)} in balancer {self._name!r} (nodes: {known}"
                f"{', ...' if len(self._members) > 10 else ''})"
            ) from None

    # --- health overlay -------------------------------------------------------------------

    def mark_down(self, name: str, /) -> bool:
        """Take *name* out of service; its keys go to their next node. Say if anything changed."""
        with self._lock:
            return self._set_health(self._get(name), _DOWN)

    def mark_up(self, name: str, /) -> bool:
        """Put *name* back in service (ending an ejection too). Say if anything changed."""
        with self._lock:
            return self._set_health(self._get(name), _UP)

    def health(self, name: str, /) -> NodeHealth:
        """The current health of *name* (an ejection whose time is up has ended)."""
        member = self._get(name)
        self._catch_up(member, self._clock())
        return member.health

    def _set_health(self, member: Member, target: NodeHealth, at: float | None = None) -> bool:
        """Move *member* to *target* if that is a legal change (call under the lock).

        *at* is when the change happened, if not now (an ejection that ran out a
        while ago, noticed only now: its slow start began when it ran out).
        """
        old = member.health
        if old is target or not member.live or not can_transition(old, target):
            return False
        member.health = transition(member.name, old, target)
        now = self._clock() if at is None else at
        if old is _EJECTED:
            self._ejected -= 1
            member.last_ejection_end = now
        elif target is _EJECTED:
            self._ejected += 1
        if target is _UP:
            member.failures = 0
            if self._slow_start is not None:
                member.warm_since = now
            else:
                member.serving = member.name
            self._up_count += 1
            self._up_weight += member.weight
        elif old is _UP:
            member.serving = None
            member.warm_since = None
            self._up_count -= 1
            self._up_weight -= member.weight
        if member.instruments is not None:
            member.instruments.transitions[target].inc()
        self._refresh()
        return True

    def _recount(self) -> None:
        """Recompute the health totals from scratch (after membership changes)."""
        members = self._members.values()
        up = [m for m in members if m.health is _UP]
        self._up_count = len(up)
        self._up_weight = math.fsum(m.weight for m in up)
        self._total_weight = math.fsum(m.weight for m in members)
        self._ejected = sum(1 for m in members if m.health is _EJECTED)
        self._instruments.nodes.set(len(self._members))
        self._refresh()

    def _refresh(self) -> None:
        total = self._total_weight
        self._panic = total > 0 and self._up_weight < self._panic_threshold * total * (1 - 1e-9)
        # Read by acquire()'s hot path without the lock: one value, one assignment.
        self._lease_weight = (total if self._panic else self._up_weight) or 1e-12
        self._instruments.healthy_nodes.set(self._up_count)
        self._instruments.panic.set(1 if self._panic else 0)

    @property
    def panicking(self) -> bool:
        """Whether too few nodes are in service, so that picks ignore health."""
        return self._panic

    # --- time: ejections that run out, slow starts that end ------------------------------

    def tick(self) -> None:
        """End ejections whose time is up and slow starts that are over.

        Picks do this lazily for the nodes they meet; a health checker calls it
        every round. Call it yourself to apply them at once.
        """
        now = self._clock()
        with self._lock:
            for member in list(self._members.values()):
                self._catch_up(member, now)

    def _catch_up(self, member: Member, now: float) -> None:
        """Apply to *member* what time alone has changed by *now*."""
        if member.health is _EJECTED and now >= member.eject_until:
            with self._lock:
                if member.health is _EJECTED and now >= member.eject_until:
                    self._set_health(member, _UP, at=member.eject_until)
        if member.warm_since is not None:
            self._warm_share(member, member.warm_since, now)

    def _warm_share(self, member: Member, since: float, now: float) -> float:
        """The share *member* takes at *now*, ending its slow start once it reaches 1."""
        share = warm_share(self._slow_start, since, now)
        if share >= 1.0:
            with self._lock:
                if member.warm_since == since and member.health is _UP and member.live:
                    member.warm_since = None
                    member.serving = member.name
        return share

    def _admits(self, member: Member, u: float) -> bool:
        """Whether *member*, not ``ok``, takes a key hashed to *u* in ``[0, 1)`` right now."""
        if not member.live:
            return False
        health = member.health
        if health is _UP:
            since = member.warm_since
            if since is None:
                return True
            return u < self._warm_share(member, since, self._clock())
        if health is _EJECTED and self._clock() >= member.eject_until:
            self._catch_up(member, self._clock())
            return member.ok or (member.health is _UP and self._admits(member, u))
        return False

    # --- passive outlier detection --------------------------------------------------------

    def report_failure(self, name: str, /) -> None:
        """Count a failed request on *name*; enough in a row eject it (with outlier detection)."""
        self._failure(self._get(name))

    def report_success(self, name: str, /) -> None:
        """Reset the run of consecutive failures of *name*."""
        self._get(name).failures = 0

    def _failure(self, member: Member) -> None:
        detection = self._outlier
        with self._lock:
            member.failures += 1
            if detection is None or not ejects(
                detection, member, members=len(self._members), ejected=self._ejected
            ):
                return
            start_ejection(detection, member, self._clock())
            self._set_health(member, _EJECTED)
            if member.instruments is not None:
                member.instruments.ejections.inc()

    # --- leases ---------------------------------------------------------------------------

    def acquire_node(self, name: str, /) -> Lease:
        """A lease on node *name*, which the caller chose rather than the balancer.

        For a request already bound to a node by other means (an affinity pick, a
        failover to the key's next replica): the lease counts it in flight on that
        node exactly as ``acquire()`` leases are counted (``in_flight``, the node's
        ``status().in_flight``, the ``in_flight`` gauge), so that load-aware choices
        (power of two choices, bounded loads) see it. It is not a pick and skips
        the bounded-load cap: the caller decided. Release it once, or use it as a
        context manager::

            first, second = balancer.pick_n("customer-42", 2)
            try:
                lease = balancer.acquire_node(first)
            except UnavailableError:  # first went out of service since pick_n()
                lease = balancer.acquire_node(second)
            with lease:
                send(lease.node, request)

        A node warming up (slow start) may be leased. Raises
        :class:`~commercekit.errors.NotFoundError` for a name that is not a member,
        and :class:`~commercekit.errors.UnavailableError` for a node out of service
        (down or ejected), unless the balancer is in panic mode, where picks ignore
        health too.
        """
        with self._lock:
            member = self._get(name)
            now = self._clock()
            self._catch_up(member, now)
            if member.health is not _UP and not self._panic:
                raise out_of_service(member, self._name, now)
            return self._ledger.take(member)

    @property
    def in_flight(self) -> int:
        """Leases held on all nodes."""
        return len(self._ledger.held)

    # --- snapshots ------------------------------------------------------------------------

    def status(self, name: str, /) -> NodeStatus:
        """A snapshot of node *name*: health, share, leases, ejections."""
        member = self._get(name)
        now = self._clock()
        self._catch_up(member, now)
        return self._status(member, now)

    def statuses(self) -> list[NodeStatus]:
        """A snapshot of every node, in the order they were added."""
        now = self._clock()
        members = list(self._members.values())
        for member in members:
            self._catch_up(member, now)
        return [self._status(m, now) for m in members]

    def _status(self, member: Member, now: float) -> NodeStatus:
        return NodeStatus(
            name=member.name,
            weight=member.weight,
            health=member.health,
            share=current_share(self._slow_start, member, now),
            in_flight=member.in_flight,
            ejections=member.ejections,
            consecutive_failures=member.failures,
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self._name!r} nodes={len(self._members)} "
            f"up={self._up_count}{' PANIC' if self._panic else ''}>"
        )
