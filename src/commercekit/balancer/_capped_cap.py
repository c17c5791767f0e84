"""The cap of the capped ring: which slots each over-cap node passes on, and to whom.

Each capped node gets a radius, the farthest distance (from a slot's start to
the node's point ahead of it) at which it keeps slots; rounds of walks along
the ring find the radii of the unique stable assignment. See
:mod:`commercekit.balancer._capped` for the whole placement.
"""

from __future__ import annotations

import itertools

from ._capped_ring import Ring

__all__ = ["Capper"]


def _kth_distance(pieces: list[tuple[int, int]], k: int, width: int) -> int:
    """The *k*-th smallest (1-based) of the distances ``d, d + width, ...`` of *pieces*.

    A piece ``(d, n)`` stands for the *n* distances ``d + j * width``.
    """
    steps: dict[int, int] = {}
    for d, n in pieces:
        level = d // width
        steps[level] = steps.get(level, 0) + 1
        steps[level + n] = steps.get(level + n, 0) - 1
    active = 0
    seen = 0
    levels = sorted(steps)
    for here, after in itertools.pairwise(levels):
        active += steps[here]
        block = active * (after - here)
        if seen + block >= k:
            level = here + (k - seen - 1) // active
            rank = (k - seen - 1) % active
            residues = sorted(d % width for d, n in pieces if d // width <= level < d // width + n)
            return level * width + residues[rank]
        seen += block
    raise AssertionError("fewer distances than asked for")  # pragma: no cover


class Capper:
    """Finds each capped node's radius, the farthest distance it keeps, by rounds.

    A round walks the ring from every point of a capped node, carrying the slots
    passed on until a node takes them all, and counts what each node was
    offered. A node offered more than its cap gets (or lowers) its radius to
    its cap-th nearest offer. Radii only come down, offers only grow, so the
    rounds end, at the unique stable assignment.
    """

    def __init__(self, ring: Ring, caps: list[int], base: list[int]) -> None:
        self.ring = ring
        self.caps = caps
        self.base = base
        self.radius: list[int | None] = [None] * len(caps)
        self.points: dict[int, list[int]] = {}
        self.pieces: dict[int, list[tuple[int, int]]] = {}

    def run(self) -> list[tuple[int, int, int]]:
        """Cap every node; return the slot ranges whose owner the cap changed."""
        over = [i for i, c in enumerate(self.base) if c > self.caps[i]]
        if not over:
            return []
        offers: dict[int, list[tuple[int, int]]] = {}
        while over:
            for i in over:
                self._cap(i, offers.get(i, []))
            counts, offers, moves = self._round()
            over = [i for i, c in counts.items() if c > self.caps[i]]
        return moves

    def _own_pieces(self, i: int) -> list[tuple[int, int]]:
        found = self.pieces.get(i)
        if found is None:
            found = self.pieces[i] = self._arc_pieces(i)
        return found

    def _arc_pieces(self, i: int) -> list[tuple[int, int]]:
        ring = self.ring
        x, q, gaps, width = ring.x, ring.q, ring.gaps, ring.width
        pieces = []
        for k in self._points_of(i):
            if gaps[k]:
                pieces.append((x(k) - q(k) * width, gaps[k]))
        return pieces

    def _points_of(self, i: int) -> list[int]:
        found = self.points.get(i)
        if found is None:
            found = self.points[i] = self.ring.indexes_of(i)
        return found

    def _cap(self, i: int, inflow: list[tuple[int, int]]) -> None:
        pieces = self._own_pieces(i) + inflow
        self.radius[i] = _kth_distance(pieces, self.caps[i], self.ring.width)

    def _round(
        self,
    ) -> tuple[dict[int, int], dict[int, list[tuple[int, int]]], list[tuple[int, int, int]]]:
        """One walk of the ring under the current radii: counts, offers and moved ranges."""
        ring = self.ring
        at, slot, ids, gaps = ring.x, ring.q, ring.ids, ring.gaps
        width, size, span = ring.width, ring.size, ring.span
        radius, base = self.radius, self.base
        total = len(ids)
        sources = sorted(
            k for i, r in enumerate(radius) if r is not None for k in self._points_of(i)
        )
        # Start at a point whose predecessor's node is uncapped: that node takes
        # whatever reaches it, so nothing flows into the first walk from behind.
        first = next(j for j, k in enumerate(sources) if radius[ids[k - 1]] is None)
        order = sources[first:] + [k + total for k in sources[:first]]
        counts = {i: base[i] for i, r in enumerate(radius) if r is not None}
        offers: dict[int, list[tuple[int, int]]] = {}
        moves: list[tuple[int, int, int]] = []
        done = -1
        for start in order:
            if start <= done:
                continue
            if start < total:
                # Most arcs of a capped node are shorter than its radius: nothing to pass on.
                g = gaps[start]
                if at(start) - (slot(start) - g + 1) * width <= radius[ids[start]]:
                    done = start
                    continue
            t = start
            flow: list[list[int]] = []  # slot ranges passed on, ascending
            while True:
                lap, k = divmod(t, total)
                x = at(k) + lap * span
                q = slot(k) + lap * size
                i = ids[k]
                g = gaps[k]
                r = radius[i]
                if flow:
                    offers.setdefault(i, []).extend(
                        (x - hi * width, hi - lo + 1) for lo, hi in flow
                    )
                own_lo = q - g + 1
                if g:
                    flow.append([own_lo, q])
                # The node keeps slot s when x - s * width <= r, that is s >= cut.
                cut = flow[0][0] if r is None else -((r - x) // width)
                kept_own = kept_behind = 0
                while flow and flow[-1][1] >= cut:
                    lo, hi = flow[-1]
                    if lo >= cut:
                        flow.pop()
                    else:
                        flow[-1][1] = cut - 1
                        lo = cut
                    if g and lo >= own_lo:
                        kept_own += hi - lo + 1
                    else:
                        kept_behind += hi - lo + 1
                        moves.append((lo, hi, i))
                counts[i] = counts.get(i, base[i]) - (g - kept_own) + kept_behind
                done = t
                t += 1
                if not flow:
                    break
        return counts, offers, moves
