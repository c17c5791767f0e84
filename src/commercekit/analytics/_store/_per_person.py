"""The per-person aggregates a batch moves: item-to-item co-purchases and funnel progress.

Both count a person once, whatever ids they used: for each person whose events
the batch changes (new events, an id linked to them or away from them) the
counts move by the difference between the person's state before and after.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select

from commercekit.analytics._sql import insert_rows, upsert

from ._funnel import FunnelSpec, progress
from ._identity import _People
from ._keys import _chunks, day_of
from ._schema import Schema


def _count_pairs(
    items: Counter[str],
    pairs: Counter[tuple[str, str]],
    changed: set[str],
    within: set[str],
    sign: int,
) -> None:
    """Count *sign* for each item of *changed* and each ordered pair of *within* touching one.

    With *within* a person's items and *changed* those it gained (or lost, with
    the set before), this is the difference of the person's pairs, in
    O(|changed| * |within|) rather than |within| squared.
    """
    for a in changed:
        items[a] += sign
        for b in within:
            if b != a:
                pairs[(a, b)] += sign
                if b not in changed:
                    pairs[(b, a)] += sign


class PerPerson:
    """The lookups of the per-person aggregates, built once, and their writes for a batch."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        sc = schema
        ids: Any = bindparam("ids", expanding=True)
        ic, fe, fp = sc.item_customers, sc.funnel_events, sc.funnel_progress
        self._q_owned = select(ic.c.customer, ic.c.product).where(ic.c.customer.in_(ids))
        name: Any = bindparam("funnel")
        self._q_funnel_times = select(fe.c.customer, fe.c.step, fe.c.ts_ms).where(
            fe.c.funnel == name, fe.c.customer.in_(ids)
        )
        self._q_funnel_progress = select(fp.c.customer, fp.c.day, fp.c.reached).where(
            fp.c.funnel == name, fp.c.customer.in_(ids)
        )
        self._d_funnel_progress = delete(fp).where(fp.c.funnel == name, fp.c.customer.in_(ids))

    def copurchases(
        self, conn: Connection, purchases: dict[str, list[str]], people: _People
    ) -> None:
        """Item-to-item counts: persons per item, and persons per pair of items.

        ``item_customers`` keeps what each id bought; a person's items are those
        of their ids. For each person the batch changes (new purchases, an id
        linked to them or away from them) the counts move by the difference
        between the person's items before and after.
        """
        now = people.now
        persons = {now.get(x, x) for x in purchases} | people.moved
        if not persons:
            return
        s = self.schema
        members = {p: (people.members(p, False), people.members(p)) for p in persons}
        ids = sorted(set().union(*(old | new for old, new in members.values())))
        owned: dict[str, set[str]] = defaultdict(set)
        for chunk in _chunks(ids):
            for customer, product in conn.execute(self._q_owned, {"ids": chunk}):
                owned[customer].add(product)
        items: Counter[str] = Counter()
        pairs: Counter[tuple[str, str]] = Counter()
        for old_ids, new_ids in members.values():
            old = set().union(*(owned[x] for x in old_ids))
            new = set().union(
                *(owned[x] for x in new_ids), *(purchases.get(x, ()) for x in new_ids)
            )
            _count_pairs(items, pairs, new - old, new, 1)
            _count_pairs(items, pairs, old - new, old, -1)
        new_rows = [
            {"customer": x, "product": p}
            for x, products in purchases.items()
            for p in sorted(set(products) - owned[x])
        ]
        if new_rows:
            insert_rows(conn, s.item_customers, new_rows)
        upsert(
            conn,
            s.item_counts,
            [{"product": p, "n": n} for p, n in items.items() if n],
            keys=("product",),
            add=("n",),
        )
        upsert(
            conn,
            s.co_counts,
            [{"a": a, "b": b, "n": n} for (a, b), n in pairs.items() if n],
            keys=("a", "b"),
            add=("n",),
        )

    def funnels(
        self,
        conn: Connection,
        specs: Sequence[FunnelSpec],
        rows: list[dict[str, Any]],
        people: _People,
    ) -> None:
        relinked, now = people.moved, people.now
        if not rows and not relinked:
            return
        s = self.schema
        if rows:
            insert_rows(conn, s.funnel_events, rows)
        for spec in specs:
            mine = {now.get(r["customer"], r["customer"]) for r in rows if r["funnel"] == spec.name}
            who = sorted(mine | relinked)
            if not who:
                continue
            ids = {p: people.members(p) for p in who}
            times: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
            for chunk in _chunks(sorted(set().union(*ids.values()))):
                params = {"funnel": spec.name, "ids": chunk}
                for customer, step, ts in conn.execute(self._q_funnel_times, params):
                    times[now.get(customer, customer)][step].append(ts)
            before: dict[str, tuple[str, int]] = {}
            for chunk in _chunks(who):
                params = {"funnel": spec.name, "ids": chunk}
                for customer, day, reached in conn.execute(self._q_funnel_progress, params):
                    before[customer] = (day, reached)
            out = []
            gone = []
            counts: Counter[tuple[str, int]] = Counter()
            for customer in who:
                got = progress(times[customer], len(spec.steps), spec.window_s * 1000)
                old = before.get(customer)
                if got is None:  # not a person who entered (any more): an id linked away
                    if old is not None:
                        counts[old] -= 1
                        gone.append(customer)
                    continue
                entered, reached, convert = got
                new = (day_of(entered), reached)
                if old != new:
                    counts[new] += 1
                    if old is not None:
                        counts[old] -= 1
                out.append(
                    {
                        "funnel": spec.name,
                        "customer": customer,
                        "day": day_of(entered),
                        "entered_ms": entered,
                        "reached": reached,
                        "convert_ms": convert,
                    }
                )
            for chunk in _chunks(gone):
                conn.execute(self._d_funnel_progress, {"funnel": spec.name, "ids": chunk})
            upsert(
                conn,
                s.funnel_progress,
                out,
                keys=("funnel", "customer"),
                replace=("day", "entered_ms", "reached", "convert_ms"),
            )
            # Per day and step reached, so a report reads a few rows, not every customer.
            upsert(
                conn,
                s.funnel_counts,
                [
                    {"funnel": spec.name, "day": d, "reached": r, "n": n}
                    for (d, r), n in counts.items()
                    if n
                ],
                keys=("funnel", "day", "reached"),
                add=("n",),
            )
