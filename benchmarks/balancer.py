"""Benchmark of the balancer: pick cost, balance, disruption, rebuilds and bounded loads.

Prints, from one run, our figures beside ``uhashring`` (the peer, measured in
the same run, in its default mode and its ketama mode) and beside the floor
(``nodes[xxh3_64(key) % n]``, the least any hashing balancer can cost), at 10,
100 and 1000 nodes, over 1,000,000 keys::

    .venv/bin/python benchmarks/balancer.py            # the tables
    .venv/bin/python benchmarks/balancer.py --json     # the same figures as one JSON object
    .venv/bin/python benchmarks/balancer.py --quick    # a fast smoke run (rougher figures)

What is measured, and how:

- **pick cost**: nanoseconds per ``pick(key)`` of ``MaglevBalancer`` (the
  default placement) with ``NullMetrics``, against the floor and against
  ``uhashring.HashRing.get_node``. Each case is a bound method called in a
  ``for`` loop over a preallocated list of ``str`` keys, compiled per case (as
  ``timeit`` does), timed with ``perf_counter_ns`` with the garbage collector
  off; all cases run once per round, interleaved, in an order that reverses
  every round; a case's figure is its fastest round less the empty loop.
  ``uhashring`` runs over the first 50,000 keys (its cost does not depend on
  how many). Picks counted into ``InMemoryMetrics`` are shown too (stated, no
  target).
- **peak-to-mean**: the largest node's share of the key space over the mean
  share, computed exactly from each placement's structure (table slots, ring
  arcs), so that sampling noise does not enter; the share seen by the 1M keys
  is shown beside it.
- **disruption**: the share of the key space whose node changes when one node
  is added, or removed (three nodes tried, the worst shown), over the ideal
  share (1/(n+1) added, 1/n removed); exact from the structures, with the 1M
  keys as a check for ours.
- **health**: one node marked down then up again: keys moved that were not
  on it (collateral), whether every key is back, and the microseconds a flip
  costs.
- **rebuild**: building the balancer from scratch, and adding one node (a
  full rebuild: fastest of five, wall clock, CPU time beside it); memory
  retained (tracemalloc).
- **bounded loads**: leases under a skewed load (Zipf keys), the largest
  lease count a node ever held over ``ceil(c * mean)``, against plain
  consistent hashing without a bound.

The script reports; it does not fail when a target is missed (read the
``meets_*`` keys of ``--json`` for that).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import random
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import _harness  # benchmarks/_harness.py, beside this script
import attrs
import mmh3
from uhashring import HashRing
from xxhash import xxh3_64_intdigest

from commercekit.balancer import KetamaBalancer, MaglevBalancer
from commercekit.metrics import InMemoryMetrics

SEED = 20240611
NODE_COUNTS = (10, 100, 1000)

# The targets of the issue, each checked against this run's figures.
TARGET_PICK_VS_FLOOR = 1.5  # ours / floor, at every node count
TARGET_PICK_FLATNESS = 1.25  # slowest / fastest of our pick costs over the node counts
TARGET_SPEEDUP_VS_UHASHRING = 10.0  # uhashring / ours, at every node count
TARGET_PEAK_TO_MEAN = {10: 1.02, 100: 1.02, 1000: 1.05}
TARGET_DISRUPTION = 1.10  # moved share / ideal share, adding or removing one node
TARGET_REBUILD_S = {100: 0.050, 1000: 1.0}
BOUNDED_FACTORS = (1.1, 1.25, 2.0)


@attrs.frozen
class Settings:
    """How much to measure: the full run, or the quick smoke run."""

    keys: int
    peer_keys: int
    rounds: int
    removals: int
    bounded_steps: int
    node_counts: tuple[int, ...] = NODE_COUNTS


FULL = Settings(keys=1_000_000, peer_keys=50_000, rounds=11, removals=3, bounded_steps=200_000)
QUICK = Settings(
    keys=20_000, peer_keys=2_000, rounds=2, removals=1, bounded_steps=5_000, node_counts=(10, 100)
)


def node_names(n: int) -> list[str]:
    """*n* node names shaped like real backends."""
    return [f"10.0.{i // 250}.{i % 250 + 1}:8080" for i in range(n)]


def make_keys(n: int) -> list[str]:
    """*n* keys shaped like session ids."""
    rng = random.Random(SEED)
    return [f"session:{rng.getrandbits(64):016x}" for _ in range(n)]


# --- timing ------------------------------------------------------------------------------

Loop = Callable[[Sequence[Any], Callable[..., Any]], int]
_LOOP = """
def loop(items, fn, _clock=_clock):
    start = _clock()
    for item in items:
        {body}
    return _clock() - start
"""


def compile_loop(body: str, name: str) -> Loop:
    """A fresh loop function, so each case has a call site of its own."""
    namespace: dict[str, Any] = {"_clock": time.perf_counter_ns}
    exec(compile(_LOOP.format(body=body), f"<loop {name}>", "exec"), namespace)
    loop: Loop = namespace["loop"]
    return loop


@attrs.define
class Case:
    """One thing timed: *fn* called on every item."""

    key: str
    fn: Callable[..., Any]
    items: Sequence[Any]
    body: str = "fn(item)"
    rounds_ns: list[float] = attrs.field(factory=list)

    def run(self, loop: Loop) -> None:
        self.rounds_ns.append(loop(self.items, self.fn) / len(self.items))


def time_cases(cases: list[Case], rounds: int) -> dict[str, float]:
    """Nanoseconds per call of each case: fastest round less the empty loop's fastest."""
    empty = Case("empty", len, cases[0].items, body="pass")
    everything = [empty, *cases]
    loops = {c.key: compile_loop(c.body, c.key) for c in everything}
    for c in everything:  # warm up: specialise the loops, fault the keys in
        loops[c.key](c.items[:2000], c.fn)
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            for c in everything if r % 2 == 0 else reversed(everything):
                c.run(loops[c.key])
    finally:
        if was_enabled:
            gc.enable()
    floor = min(empty.rounds_ns)
    return {c.key: max(min(c.rounds_ns) - floor, 0.0) for c in cases}


# --- placements and peers ----------------------------------------------------------------


@attrs.define
class Fleet:
    """Everything built for one node count."""

    n: int
    names: list[str]
    ours: MaglevBalancer
    ketama: KetamaBalancer
    peer: HashRing
    peer_ketama: HashRing
    build_s: dict[str, float]


def build_fleet(n: int) -> Fleet:
    """Our balancers and the peer's rings for *n* nodes, each build timed once."""
    names = node_names(n)
    build_s: dict[str, float] = {}

    def timed(key: str, make: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        built = make()
        build_s[key] = time.perf_counter() - start
        return built

    return Fleet(
        n=n,
        names=names,
        ours=timed("ours", lambda: MaglevBalancer(names, panic_threshold=0)),
        ketama=timed("ketama", lambda: KetamaBalancer(names, panic_threshold=0)),
        peer=timed("uhashring", lambda: HashRing(names)),
        peer_ketama=timed("uhashring_ketama", lambda: HashRing(names, hash_fn="ketama")),
        build_s=build_s,
    )


def ring_shares(ring: HashRing, space: int) -> dict[str, float]:
    """Each node's exact share of a uhashring ring: the arcs ending at its points."""
    points = ring.runtime._keys
    owners = ring.runtime._ring
    shares: Counter[str] = Counter()
    previous = points[-1] - space
    for point in points:
        shares[owners[point]] += (point - previous) / space
        previous = point
    return dict(shares)


def peak_to_mean(shares: dict[str, float], n: int) -> float:
    """The largest share over the mean share."""
    return max(shares.values()) * n


def sampled_peak_to_mean(picks: Sequence[str], n: int) -> float:
    """The most keys any node got over the mean, for one set of keys."""
    return max(Counter(picks).values()) * n / len(picks)


def maglev_slots(balancer: MaglevBalancer) -> list[str]:
    """The owner of every slot of a Maglev table."""
    return [m.name for m in balancer._slots]


def changed_share(before: Sequence[str], after: Sequence[str]) -> float:
    """The share of positions whose owner differs."""
    return sum(1 for a, b in zip(before, after, strict=True) if a != b) / len(before)


def removal_victims(names: list[str], count: int) -> list[str]:
    """Nodes to remove: the first, the middle and the last, as many as asked."""
    picks = [names[0], names[len(names) // 2], names[-1]]
    return picks[:count]


# --- the measurements --------------------------------------------------------------------


def measure_hashes(keys: list[str], rounds: int) -> dict[str, float]:
    """The candidate 64-bit hashes, on the same str keys."""
    subset = keys[:200_000]
    raw = [k.encode() for k in subset]
    mask = (1 << 64) - 1
    cases = [
        Case("xxh3_64(str.encode())", lambda k: xxh3_64_intdigest(k.encode()), subset),
        Case("xxh3_64(bytes)", xxh3_64_intdigest, raw),
        Case("mmh3.hash64(str)[0]", lambda k: mmh3.hash64(k, signed=False)[0], subset),
        Case("mmh3.hash128(str) & 2**64-1", lambda k: mmh3.hash128(k) & mask, subset),
        Case("mmh3.hash128(bytes) & 2**64-1", lambda k: mmh3.hash128(k) & mask, raw),
    ]
    return {k: round(v, 1) for k, v in time_cases(cases, rounds).items()}


def measure_picks(fleets: list[Fleet], keys: list[str], settings: Settings) -> dict[int, Any]:
    """Pick costs of every placement and the floor, all node counts in one interleaved run."""
    peer_keys = keys[: settings.peer_keys]
    cases: list[Case] = []
    for f in fleets:
        nodes, n = f.names, f.n

        def floor(key: str, nodes: list[str] = nodes, n: int = n) -> str:
            return nodes[xxh3_64_intdigest(key.encode()) % n]

        counted = MaglevBalancer(f.names, metrics=InMemoryMetrics(), panic_threshold=0)
        cases += [
            Case(f"floor@{n}", floor, keys),
            Case(f"ours@{n}", f.ours.pick, keys),
            Case(f"ours_metrics@{n}", counted.pick, peer_keys),
            Case(f"ketama@{n}", f.ketama.pick, peer_keys),
            Case(f"uhashring@{n}", f.peer.get_node, peer_keys),
            Case(f"uhashring_ketama@{n}", f.peer_ketama.get_node, peer_keys),
        ]
    ns = time_cases(cases, settings.rounds)
    out: dict[int, Any] = {}
    for f in fleets:
        n = f.n
        row = {
            name: round(ns[f"{name}@{n}"], 1)
            for name in ("floor", "ours", "ours_metrics", "ketama", "uhashring", "uhashring_ketama")
        }
        row["ratio_to_floor"] = round(row["ours"] / row["floor"], 3)
        row["speedup_vs_uhashring"] = round(row["uhashring"] / row["ours"], 1)
        row["speedup_vs_uhashring_ketama"] = round(row["uhashring_ketama"] / row["ours"], 1)
        row["metrics_ratio_to_floor"] = round(row["ours_metrics"] / row["floor"], 3)
        out[n] = row
    return out


def measure_balance(f: Fleet, keys: list[str], ours_picks: list[str]) -> dict[str, float]:
    """Peak-to-mean of each placement: exact key-space shares, and the sample of keys."""
    floor_picks = [f.names[xxh3_64_intdigest(k.encode()) % f.n] for k in keys]
    return {
        "ours": round(peak_to_mean(f.ours.shares(), f.n), 4),
        "ketama": round(peak_to_mean(f.ketama.shares(), f.n), 4),
        "uhashring": round(peak_to_mean(ring_shares(f.peer, 1 << 128), f.n), 4),
        "uhashring_ketama": round(peak_to_mean(ring_shares(f.peer_ketama, 1 << 32), f.n), 4),
        "ours_sampled": round(sampled_peak_to_mean(ours_picks, f.n), 4),
        "floor_sampled": round(sampled_peak_to_mean(floor_picks, f.n), 4),
    }


def measure_disruption(
    f: Fleet, keys: list[str], ours_picks: list[str], settings: Settings
) -> dict[str, Any]:
    """Moved share over ideal share, adding one node and removing one, for each placement."""
    n = f.n
    victims = removal_victims(f.names, settings.removals)
    newcomer = "10.9.9.9:8080"

    base_slots = maglev_slots(f.ours)
    grown = MaglevBalancer([*f.names, newcomer])
    ours_add = changed_share(base_slots, maglev_slots(grown)) * (n + 1)
    ours_add_sampled = changed_share(ours_picks, [grown.pick(k) for k in keys]) * (n + 1)
    ours_remove, ours_remove_sampled = [], []
    for victim in victims:
        shrunk = MaglevBalancer([x for x in f.names if x != victim])
        ours_remove.append(changed_share(base_slots, maglev_slots(shrunk)) * n)
        after = [shrunk.pick(k) for k in keys]
        ours_remove_sampled.append(changed_share(ours_picks, after) * n)

    # A ring moves exactly the arcs of the node that comes or goes (equal weights).
    ketama_shares = f.ketama.shares()
    grown_ketama = KetamaBalancer([*f.names, newcomer]).shares()
    peer_shares = ring_shares(f.peer, 1 << 128)
    grown_peer = ring_shares(HashRing([*f.names, newcomer]), 1 << 128)
    return {
        "ours_add": round(ours_add, 3),
        "ours_remove": round(max(ours_remove), 3),
        "ours_add_sampled": round(ours_add_sampled, 3),
        "ours_remove_sampled": round(max(ours_remove_sampled), 3),
        "ketama_add": round(grown_ketama[newcomer] * (n + 1), 3),
        "ketama_remove": round(max(ketama_shares[v] for v in victims) * n, 3),
        "uhashring_add": round(grown_peer[newcomer] * (n + 1), 3),
        "uhashring_remove": round(max(peer_shares[v] for v in victims) * n, 3),
        "removed": victims,
    }


def measure_health(f: Fleet, keys: list[str], ours_picks: list[str]) -> dict[str, Any]:
    """Eject one node through health, then recover it: collateral moves and exact restore."""
    balancer = f.ours
    victim = f.names[f.n // 3]
    balancer.mark_down(victim)
    during = [balancer.pick(k) for k in keys]
    balancer.mark_up(victim)
    after = [balancer.pick(k) for k in keys]
    on_victim = sum(1 for p in ours_picks if p == victim)
    moved = sum(1 for a, b in zip(ours_picks, during, strict=True) if a != b)
    collateral = sum(1 for a, b in zip(ours_picks, during, strict=True) if a != b and a != victim)
    flips = 2000
    start = time.perf_counter()
    for _ in range(flips // 2):
        balancer.mark_down(victim)
        balancer.mark_up(victim)
    flip_us = (time.perf_counter() - start) / flips * 1e6
    return {
        "keys_on_node": on_victim,
        "keys_moved": moved,
        "collateral_keys": collateral,
        "victim_keys_left_on_it": sum(1 for p in during if p == victim),
        "restored_exactly": after == ours_picks,
        "flip_us": round(flip_us, 2),
    }


def retained_bytes(make: Callable[[], Any]) -> int:
    """Memory still held by what *make* builds, per tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        built = make()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del built
    return held


def measure_rebuild(f: Fleet) -> dict[str, Any]:
    """Build and add-one-node times, and memory held, ours and the peer's."""
    add_s, add_cpu_s = [], []
    balancer = MaglevBalancer(f.names)
    for i in range(5):
        start, start_cpu = time.perf_counter(), time.process_time()
        balancer.add(f"10.8.8.{i}:8080")
        add_s.append(time.perf_counter() - start)
        add_cpu_s.append(time.process_time() - start_cpu)
        balancer.remove(f"10.8.8.{i}:8080")
    return {
        "ours_build_s": round(f.build_s["ours"], 4),
        "ours_add_node_s": round(min(add_s), 4),
        "ours_add_node_cpu_s": round(min(add_cpu_s), 4),
        "ketama_build_s": round(f.build_s["ketama"], 4),
        "uhashring_build_s": round(f.build_s["uhashring"], 4),
        "uhashring_ketama_build_s": round(f.build_s["uhashring_ketama"], 4),
        "ours_bytes": retained_bytes(lambda: MaglevBalancer(f.names)),
        "ketama_bytes": retained_bytes(lambda: KetamaBalancer(f.names)),
        "uhashring_bytes": retained_bytes(lambda: HashRing(f.names)),
    }


def measure_bounded(settings: Settings) -> dict[str, Any]:
    """Leases under a Zipf load at 100 nodes, against consistent hashing without a bound."""
    n, held_target = 100, 1000
    rng = random.Random(SEED)
    key_space = [f"customer-{i}" for i in range(10_000)]
    cumulative = list(itertools.accumulate(1 / (k + 1) ** 1.1 for k in range(len(key_space))))
    stream = rng.choices(key_space, cum_weights=cumulative, k=settings.bounded_steps)
    rows: dict[str, Any] = {}
    for factor in BOUNDED_FACTORS:
        balancer = MaglevBalancer(node_names(n), balance_factor=factor)
        held: list[Any] = []
        worst = 0.0
        kept = 0
        order = random.Random(SEED + 1)
        for key in stream:
            cap = math.ceil(factor * (balancer.in_flight + 1) / n)
            lease = balancer.acquire(key)
            worst = max(worst, balancer.status(lease.node).in_flight / cap)
            kept += lease.node == balancer.pick(key)
            held.append(lease)
            if len(held) > held_target:
                i = order.randrange(len(held))
                held[i], held[-1] = held[-1], held[i]
                held.pop().release()
        rows[f"c={factor:g}"] = {
            "max_over_cap": round(worst, 3),
            "affinity_kept": round(kept / len(stream), 3),
        }
    # The peer: the same stream through plain consistent hashing, no bound.
    plain = MaglevBalancer(node_names(n))
    loads: Counter[str] = Counter()
    held_nodes: list[str] = []
    order = random.Random(SEED + 1)
    worst_unbounded = 0.0
    for key in stream:
        node = plain.pick(key)
        total = len(held_nodes)
        loads[node] += 1
        worst_unbounded = max(worst_unbounded, loads[node] / math.ceil((total + 1) / n))
        held_nodes.append(node)
        if len(held_nodes) > held_target:
            i = order.randrange(len(held_nodes))
            held_nodes[i], held_nodes[-1] = held_nodes[-1], held_nodes[i]
            loads[held_nodes.pop()] -= 1
    return {
        "nodes": n,
        "leases_held": held_target,
        "requests": len(stream),
        "workload": "Zipf(1.1) over 10,000 keys",
        "factors": rows,
        "unbounded_max_over_mean": round(worst_unbounded, 3),
    }


# --- the report --------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were taken on."""
    return _harness.machine("uhashring", "xxhash", "mmh3")


def run(settings: Settings, *, quick: bool) -> dict[str, Any]:
    """Every measurement, as one JSON-ready report."""
    started = time.perf_counter()
    keys = make_keys(settings.keys)
    fleets = [build_fleet(n) for n in settings.node_counts]
    hashes = measure_hashes(keys, settings.rounds)
    picks = measure_picks(fleets, keys, settings)
    balance, disruption, health, rebuild = {}, {}, {}, {}
    for f in fleets:
        ours_picks = [f.ours.pick(k) for k in keys]
        balance[f.n] = measure_balance(f, keys, ours_picks)
        disruption[f.n] = measure_disruption(f, keys, ours_picks, settings)
        health[f.n] = measure_health(f, keys, ours_picks)
        rebuild[f.n] = measure_rebuild(f)
    bounded = measure_bounded(settings)

    counts = settings.node_counts
    ours_costs = [picks[n]["ours"] for n in counts]
    flatness = max(ours_costs) / min(ours_costs)
    return {
        "benchmark": "balancer",
        "quick": quick,
        "machine": machine(),
        "method": {
            "keys": settings.keys,
            "peer_keys": settings.peer_keys,
            "rounds": settings.rounds,
            "statistic": "ns per pick: fastest round, less the fastest round of the empty loop",
            "table_size": fleets[0].ours.table_size,
            "seconds": round(time.perf_counter() - started, 1),
        },
        "hash_ns": hashes,
        "pick": picks,
        "pick_flatness": round(flatness, 3),
        "peak_to_mean": balance,
        "disruption": disruption,
        "health": health,
        "rebuild": rebuild,
        "bounded": bounded,
        "meets_pick_cost": all(picks[n]["ratio_to_floor"] <= TARGET_PICK_VS_FLOOR for n in counts),
        "meets_pick_flat": flatness <= TARGET_PICK_FLATNESS,
        "meets_pick_vs_uhashring": all(
            picks[n]["speedup_vs_uhashring"] >= TARGET_SPEEDUP_VS_UHASHRING
            and picks[n]["speedup_vs_uhashring_ketama"] >= TARGET_SPEEDUP_VS_UHASHRING
            for n in counts
        ),
        "meets_peak_to_mean": all(balance[n]["ours"] <= TARGET_PEAK_TO_MEAN[n] for n in counts),
        "meets_disruption": all(
            max(disruption[n]["ours_add"], disruption[n]["ours_remove"]) <= TARGET_DISRUPTION
            for n in counts
        ),
        "meets_zero_collateral": all(
            health[n]["collateral_keys"] == 0 and health[n]["victim_keys_left_on_it"] == 0
            for n in counts
        ),
        "meets_exact_restore": all(health[n]["restored_exactly"] for n in counts),
        "meets_rebuild": all(
            rebuild[n]["ours_add_node_s"] <= limit
            for n, limit in TARGET_REBUILD_S.items()
            if n in counts
        ),
        "meets_bounded": all(row["max_over_cap"] <= 1.0 for row in bounded["factors"].values()),
    }


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(title)
    print(
        "  ".join(
            h.rjust(w) if i else h.ljust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    print("-" * (sum(widths) + 2 * (len(widths) - 1)))
    for r in rows:
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
    print()


def print_tables(report: dict[str, Any]) -> None:
    """The report as readable tables: ours, the peer, the ratio, the target."""
    m, method = report["machine"], report["method"]
    print(f"commercekit balancer benchmark{' (--quick: rough figures)' if report['quick'] else ''}")
    print(f"{m['python']} on {m['os']}, {m['cpu']}, {m['cpus']} CPUs")
    print(
        f"uhashring {m['uhashring']}, xxhash {m['xxhash']}, mmh3 {m['mmh3']}; {method['keys']:,} "
        f"keys; ours = MaglevBalancer (table {method['table_size']}), NullMetrics"
    )
    print()
    picks = report["pick"]
    _table(
        f"pick cost, ns ({method['statistic']}; uhashring over {method['peer_keys']:,} keys)",
        [
            "nodes",
            "floor",
            "ours",
            "ours/floor",
            "<=1.5",
            "uhashring",
            "÷ours",
            "ketama mode",
            "÷ours",
            ">=10x",
        ],
        [
            [
                str(n),
                f"{r['floor']:.0f}",
                f"{r['ours']:.0f}",
                f"{r['ratio_to_floor']:.2f}x",
                _met(r["ratio_to_floor"] <= TARGET_PICK_VS_FLOOR),
                f"{r['uhashring']:.0f}",
                f"{r['speedup_vs_uhashring']:.1f}x",
                f"{r['uhashring_ketama']:.0f}",
                f"{r['speedup_vs_uhashring_ketama']:.1f}x",
                _met(
                    min(r["speedup_vs_uhashring"], r["speedup_vs_uhashring_ketama"])
                    >= TARGET_SPEEDUP_VS_UHASHRING
                ),
            ]
            for n, r in picks.items()
        ],
    )
    print(
        f"flat over node counts: slowest/fastest of ours {report['pick_flatness']:.2f}x "
        f"(target <={TARGET_PICK_FLATNESS}) {_met(report['meets_pick_flat'])}"
    )
    print(
        "stated, no target: picks counted into InMemoryMetrics "
        + ", ".join(
            f"{n} nodes {r['ours_metrics']:.0f} ns ({r['metrics_ratio_to_floor']:.2f}x floor)"
            for n, r in picks.items()
        )
        + "; our KetamaBalancer "
        + ", ".join(f"{r['ketama']:.0f} ns" for r in picks.values())
    )
    print()
    bal = report["peak_to_mean"]
    _table(
        "key-space peak-to-mean (largest share / mean share; exact from tables and rings)",
        [
            "nodes",
            "ours",
            "target",
            "met",
            "uhashring",
            "ratio",
            "ketama mode",
            "ours, 1M keys",
            "floor, 1M keys",
        ],
        [
            [
                str(n),
                f"{r['ours']:.4f}",
                f"<={TARGET_PEAK_TO_MEAN[n]}",
                _met(r["ours"] <= TARGET_PEAK_TO_MEAN[n]),
                f"{r['uhashring']:.4f}",
                f"{r['ours'] / r['uhashring']:.3f}",
                f"{r['uhashring_ketama']:.4f}",
                f"{r['ours_sampled']:.4f}",
                f"{r['floor_sampled']:.4f}",
            ]
            for n, r in bal.items()
        ],
    )
    dis = report["disruption"]
    _table(
        "keys moved by one node added / removed, over the ideal share (exact; 1M keys in brackets)",
        [
            "nodes",
            "ours add",
            "ours remove",
            "target",
            "met",
            "uhashring add",
            "remove",
            "ketama add",
            "remove",
        ],
        [
            [
                str(n),
                f"{r['ours_add']:.3f} ({r['ours_add_sampled']:.3f})",
                f"{r['ours_remove']:.3f} ({r['ours_remove_sampled']:.3f})",
                f"<={TARGET_DISRUPTION}",
                _met(max(r["ours_add"], r["ours_remove"]) <= TARGET_DISRUPTION),
                f"{r['uhashring_add']:.3f}",
                f"{r['uhashring_remove']:.3f}",
                f"{r['ketama_add']:.3f}",
                f"{r['ketama_remove']:.3f}",
            ]
            for n, r in dis.items()
        ],
    )
    health = report["health"]
    _table(
        "health: one node marked down, then up (ours; keys of the 1M)",
        ["nodes", "keys on node", "moved", "collateral", "left on it", "restored", "flip us"],
        [
            [
                str(n),
                f"{r['keys_on_node']:,}",
                f"{r['keys_moved']:,}",
                str(r["collateral_keys"]),
                str(r["victim_keys_left_on_it"]),
                _met(r["restored_exactly"]),
                f"{r['flip_us']:.1f}",
            ]
            for n, r in health.items()
        ],
    )
    reb = report["rebuild"]
    _table(
        "rebuild: build from scratch, add one node (ours: a full table rebuild), memory held",
        [
            "nodes",
            "ours build",
            "ours add",
            "(cpu)",
            "target",
            "met",
            "uhashring build",
            "ketama mode",
            "ours MB",
            "uhashring MB",
        ],
        [
            [
                str(n),
                f"{r['ours_build_s'] * 1000:.0f} ms",
                f"{r['ours_add_node_s'] * 1000:.0f} ms",
                f"{r['ours_add_node_cpu_s'] * 1000:.0f} ms",
                f"<={TARGET_REBUILD_S[n] * 1000:.0f} ms" if n in TARGET_REBUILD_S else "",
                _met(r["ours_add_node_s"] <= TARGET_REBUILD_S[n]) if n in TARGET_REBUILD_S else "",
                f"{r['uhashring_build_s'] * 1000:.0f} ms",
                f"{r['uhashring_ketama_build_s'] * 1000:.0f} ms",
                f"{r['ours_bytes'] / 1e6:.2f}",
                f"{r['uhashring_bytes'] / 1e6:.2f}",
            ]
            for n, r in reb.items()
        ],
    )
    b = report["bounded"]
    _table(
        f"bounded loads: {b['requests']:,} requests, {b['workload']}, {b['leases_held']} leases "
        f"held, {b['nodes']} nodes",
        ["c", "max leases / ceil(c*mean)", "met", "affinity kept", "unbounded max / mean"],
        [
            [
                name,
                f"{r['max_over_cap']:.3f}",
                _met(r["max_over_cap"] <= 1.0),
                f"{r['affinity_kept']:.1%}",
                f"{b['unbounded_max_over_mean']:.2f}",
            ]
            for name, r in b["factors"].items()
        ],
    )
    n = max(picks)
    _table(
        f"trade-off at {n} nodes: choose the placement (rows from the tables above)",
        [
            "placement",
            "pick ns",
            "peak/mean",
            "add",
            "remove",
            "build ms",
            "same picks for same nodes",
        ],
        [
            [
                "MaglevBalancer (default)",
                f"{picks[n]['ours']:.0f}",
                f"{bal[n]['ours']:.3f}",
                f"{dis[n]['ours_add']:.2f}",
                f"{dis[n]['ours_remove']:.2f}",
                f"{reb[n]['ours_build_s'] * 1000:.0f}",
                "yes, any order",
            ],
            [
                "KetamaBalancer",
                f"{picks[n]['ketama']:.0f}",
                f"{bal[n]['ketama']:.3f}",
                f"{dis[n]['ketama_add']:.2f}",
                f"{dis[n]['ketama_remove']:.2f}",
                f"{reb[n]['ketama_build_s'] * 1000:.0f}",
                "yes, same add order",
            ],
            [
                "uhashring (peer)",
                f"{picks[n]['uhashring']:.0f}",
                f"{bal[n]['uhashring']:.3f}",
                f"{dis[n]['uhashring_add']:.2f}",
                f"{dis[n]['uhashring_remove']:.2f}",
                f"{reb[n]['uhashring_build_s'] * 1000:.0f}",
                "yes",
            ],
        ],
    )
    hashes = report["hash_ns"]
    print(
        "64-bit hash candidates, ns per call on the same keys: "
        + ", ".join(f"{k} {v:.0f}" for k, v in hashes.items())
    )
    print()
    targets = {k: v for k, v in report.items() if k.startswith("meets_")}
    print(
        "targets: "
        + ", ".join(f"{k} {_met(v)}" for k, v in targets.items())
        + f"  ({method['seconds']} s)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables, or its JSON with ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run, rough figures")
    args = parser.parse_args(argv)
    report = run(QUICK if args.quick else FULL, quick=args.quick)
    if args.json:
        json.dump(report, sys.stdout, indent=2, allow_nan=False)
        print()
    else:
        print_tables(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
