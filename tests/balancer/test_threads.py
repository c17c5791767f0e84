"""Picks from many threads while health flips and membership changes: every pick is a node
that was a member and in service at some moment during that pick."""

from __future__ import annotations

import bisect
import itertools
import math
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from commercekit.balancer import KetamaBalancer, Lease, MaglevBalancer, RoundRobinBalancer
from commercekit.balancer._pool._base import Pool

from .support import small_capped

STABLE = [f"stable-{i}" for i in range(12)]
FLAPPING = [f"flap-{i}" for i in range(6)]
CHURNING = [f"temp-{i}" for i in range(4)]


@contextmanager
def fast_thread_switching() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


class History:
    """A log of every change, numbered, so a pick can be checked against the states it spans."""

    def __init__(self) -> None:
        self.seq = itertools.count(1)
        self.last = 0
        self.events: list[tuple[int, str, bool]] = []  # (seq, node, in service afterwards)
        self.lock = threading.Lock()

    def change(self, node: str, serving: bool, apply: Callable[[], object]) -> None:
        with self.lock:
            number = next(self.seq)
            self.last = number
        apply()
        with self.lock:
            self.events.append((number, node, serving))

    def checker(self) -> Callable[[str, int, int], bool]:
        """Say whether a node served in any state from just before change *first* to *last*."""
        by_node: dict[str, list[tuple[int, bool]]] = {}
        for number, node, state in sorted(self.events):
            by_node.setdefault(node, []).append((number, state))

        def allowed(node: str, first: int, last: int) -> bool:
            events = by_node.get(node, [])
            i = bisect.bisect_left(events, (first, False))
            serving = events[i - 1][1] if i else node not in CHURNING
            if serving:
                return True
            for number, state in events[i:]:
                if number > last:
                    return False
                if state:
                    return True
            return False

        return allowed


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda: MaglevBalancer(STABLE + FLAPPING, panic_threshold=0, table_size=1009),
            id="maglev",
        ),
        pytest.param(lambda: KetamaBalancer(STABLE + FLAPPING, panic_threshold=0), id="ketama"),
        pytest.param(lambda: small_capped(STABLE + FLAPPING, panic_threshold=0), id="capped"),
        pytest.param(lambda: RoundRobinBalancer(STABLE + FLAPPING, panic_threshold=0), id="rr"),
    ],
)
def test_every_pick_is_a_live_healthy_node(make: Callable[[], Pool]) -> None:
    balancer = make()
    history = History()
    stop = threading.Event()
    errors: list[BaseException] = []
    checks: list[tuple[int, str, int]] = []

    def mutate() -> None:
        rng = random.Random(1)
        members = set(STABLE + FLAPPING)
        up = set(FLAPPING)
        try:
            while not stop.is_set():
                if rng.random() < 0.95:
                    node = rng.choice(FLAPPING)
                    if node in up:
                        history.change(node, False, lambda n=node: balancer.mark_down(n))
                        up.discard(node)
                    else:
                        history.change(node, True, lambda n=node: balancer.mark_up(n))
                        up.add(node)
                else:
                    node = rng.choice(CHURNING)
                    if node in members:
                        history.change(node, False, lambda n=node: balancer.remove(n))
                        members.discard(node)
                    else:
                        history.change(node, True, lambda n=node: balancer.add(n))
                        members.add(node)
        except BaseException as exc:
            errors.append(exc)

    def pick(worker: int) -> None:
        rng = random.Random(worker)
        keyed = hasattr(balancer, "pick_n")
        try:
            while not stop.is_set():
                first = history.last
                key = f"key-{rng.randrange(10**6)}"
                node = balancer.pick(key) if keyed else balancer.pick()  # type: ignore[call-arg]
                checks.append((first, node, history.last))
        except BaseException as exc:
            errors.append(exc)

    with fast_thread_switching():
        threads = [threading.Thread(target=mutate)]
        threads += [threading.Thread(target=pick, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        # 1.5 s, or longer on a loaded machine until enough changes and picks ran (at most 20 s).
        deadline = time.monotonic() + 20.0
        stop.wait(1.5)
        while (len(history.events) <= 100 or len(checks) <= 2000) and time.monotonic() < deadline:
            stop.wait(0.1)
        stop.set()
        for t in threads:
            t.join(10)
    assert not errors, errors
    assert len(history.events) > 100
    assert len(checks) > 2000
    allowed = history.checker()
    bad = [(f, n, last) for f, n, last in checks if not allowed(n, f, last)]
    assert not bad, f"{len(bad)} picks of nodes out of service, e.g. {bad[:3]}"


def test_leases_stay_exact_under_contention() -> None:
    balancer = MaglevBalancer(STABLE)
    start = threading.Barrier(6)

    def work(worker: int) -> None:
        rng = random.Random(worker)
        start.wait()
        for _ in range(1500):
            with balancer.acquire(f"k{rng.randrange(50)}"):
                pass

    with fast_thread_switching():
        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert balancer.in_flight == 0
    assert {s.in_flight for s in balancer.statuses()} == {0}


def test_a_lease_released_from_many_threads_at_once_counts_once() -> None:
    balancer = MaglevBalancer(STABLE)
    leases = [balancer.acquire(f"k{i}") for i in range(300)]
    start = threading.Barrier(4)

    def work() -> None:
        start.wait()
        for lease in leases:
            lease.release()

    with fast_thread_switching():
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert all(lease.released for lease in leases)
    assert balancer.in_flight == 0
    assert {s.in_flight for s in balancer.statuses()} == {0}


def test_bounded_loads_hold_their_cap_under_contention() -> None:
    # Leases taken by racing threads on a skewed set of keys, none released: every node
    # stays within the cap the final count allows (caps only grow as leases are added).
    balancer = MaglevBalancer(STABLE, balance_factor=1.25)
    start = threading.Barrier(4)
    held: list[Lease] = []

    def work(worker: int) -> None:
        rng = random.Random(worker)
        start.wait()
        mine = [
            balancer.acquire(f"hot{min(rng.randrange(40), rng.randrange(40))}") for _ in range(400)
        ]
        held.extend(mine)

    with fast_thread_switching():
        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert balancer.in_flight == len(held) == 1600
    cap = math.ceil(1.25 * len(held) / len(STABLE))
    assert max(s.in_flight for s in balancer.statuses()) <= cap
    for lease in held:
        lease.release()
    assert balancer.in_flight == 0
