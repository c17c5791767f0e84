"""The cap of the capped ring: which slots each over-cap node passes on, and to whom.

A node ranks slots by their distance (from the slot's start to the node's
point ahead of it), then by slot index, so no two slots ever tie. Each capped
node gets a radius, the rank of the farthest slot it keeps; rounds of walks
along the ring find the radii of the unique stable assignment. See
:mod:`commercekit.balancer._placement._capped` for the whole placement.
"""

from __future__ import annotations

import itertools

from commercekit.errors import InvalidStateError

from ._capped_ring import Ring

__all__ = ["Capper"]

Rank = tuple[int, int]
"""A slot's rank for a node: (distance, slot index); lower is nearer."""

Piece = tuple[int, int, int]
"""``(d, n, s)``: the *n* slots ``s, s - 1, ...`` at distances ``d, d + width, ...``."""


def _kth_rank(pieces: list[Piece], k: int, width: int, size: int) -> Rank:
    """The *k*-th nearest (1-based, k >= 1) of the slots of *pieces*, by rank."""
    steps: dict[int, int] = {}
    for d, n, _ in pieces:
        level = d // width
        steps[level] = steps.get(level, 0) + 1
        steps[level + n] = steps.get(level + n, 0) - 1
    active = 0
    seen = 0
    for here, after in itertools.pairwise(sorted(steps)):
        active += steps[here]
        block = active * (after - here)
        if seen + block >= k:
            level = here + (k - seen - 1) // active
            at_level = sorted(
                (d % width, (s - (level - d // width)) % size)
                for d, n, s in pieces
                if d // width <= level < d // width + n
            )
            residue, slot = at_level[(k - seen - 1) % active]
            return level * width + residue, slot
        seen += block
    raise AssertionError("fewer slots than asked for")  # pragma: no cover


def _cut(x: int, radius: Rank, width: int, size: int) -> int:
    """The lowest slot a node keeps, seen from its point at *x*, within *radius*.

    Slots below the point are nearer the higher they are; the slot exactly at
    the radius's distance is kept only if its index is within the tie-break.
    """
    distance, slot = radius
    cut = -((distance - x) // width)  # the lowest s with x - s * width <= distance
    if x - cut * width == distance and cut % size > slot:
        cut += 1
    return cut


class Capper:
    """Finds each capped node's radius, the rank of the farthest slot it keeps, by rounds.

    A round walks the ring from every point of a capped node, carrying the slots
    passed on until a node takes them all, and counts what each node was
    offered. A node offered more than its cap gets (or lowers) its radius to
    its cap-th nearest offer, so that it keeps exactly its cap. Ranks never
    tie, so each such step lowers a radius, and offers only grow: the rounds
    end, at the unique stable assignment.
    """

    def __init__(self, ring: Ring, caps: list[int], base: list[int]) -> None:
        self.ring = ring
        self.caps = caps
        self.base = base
        self.radius: list[Rank | None] = [None] * len(caps)
        self.points: dict[int, list[int]] = {}
        self.pieces: dict[int, list[Piece]] = {}

    def run(self) -> list[tuple[int, int, int]]:
        """Cap every node; return the slot ranges whose owner the cap changed."""
        over = [i for i, c in enumerate(self.base) if c > self.caps[i]]
        if not over:
            return []
        offers: dict[int, list[Piece]] = {}
        while over:
            for i in over:
                self._cap(i, offers.get(i, []))
            counts, offers, moves = self._round()
            over = [i for i, c in counts.items() if c > self.caps[i]]
        return moves

    def _own_pieces(self, i: int) -> list[Piece]:
        found = self.pieces.get(i)
        if found is None:
            found = self.pieces[i] = self._arc_pieces(i)
        return found

    def _arc_pieces(self, i: int) -> list[Piece]:
        ring = self.ring
        x, q, gaps, width = ring.x, ring.q, ring.gaps, ring.width
        pieces = []
        for k in self._points_of(i):
            if gaps[k]:
                pieces.append((x(k) - q(k) * width, gaps[k], q(k)))
        return pieces

    def _points_of(self, i: int) -> list[int]:
        found = self.points.get(i)
        if found is None:
            found = self.points[i] = self.ring.indexes_of(i)
        return found

    def _cap(self, i: int, inflow: list[Piece]) -> None:
        pieces = self._own_pieces(i) + inflow
        self.radius[i] = _kth_rank(pieces, self.caps[i], self.ring.width, self.ring.size)

    def _round(
        self,
    ) -> tuple[dict[int, int], dict[int, list[Piece]], list[tuple[int, int, int]]]:
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
        offers: dict[int, list[Piece]] = {}
        moves: list[tuple[int, int, int]] = []
        done = -1
        for start in order:
            if start <= done:
                continue
            if start < total:
                # Most arcs of a capped node are shorter than its radius: nothing to pass on.
                reach = radius[ids[start]]
                if reach is None:  # a source's node is capped
                    raise InvalidStateError("a capped ring source has no radius")
                if _cut(at(start), reach, width, size) <= slot(start) - gaps[start] + 1:
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
                        (x - hi * width, hi - lo + 1, hi) for lo, hi in flow
                    )
                own_lo = q - g + 1
                if g:
                    flow.append([own_lo, q])
                # The node keeps the slots s >= cut: all of them if it is uncapped.
                cut = flow[0][0] if r is None else _cut(x, r, width, size)
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
