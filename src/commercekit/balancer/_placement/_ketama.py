"""The ketama continuum, point for point as libketama and ``uhashring`` build it.

Pure: nodes and weights in, a sorted list of 32-bit points and the owner of
each point out. For a node of weight *w* among *n* nodes of total weight *W*,
``floor(40 * n * w / W)`` labels ``"<name>-<k>"`` are hashed with MD5, and each
digest gives four points (bytes 0-3, 4-7, 8-11, 12-15, little-endian). A key
goes to the owner of the first point strictly above ``md5(key)[0:4]``, wrapping
to the first point.

Where two points collide, the node added later owns the point, as in
``uhashring``; with 160 points a node that is about one collision in 10**5
point pairs, so order matters only for those points.
"""

from __future__ import annotations

import itertools
import math
import operator
import sys
from array import array
from collections.abc import Sequence
from hashlib import md5

__all__ = ["KETAMA_POINTS_PER_HASH", "KETAMA_VNODES", "build_continuum"]

KETAMA_VNODES = 40
"""Labels hashed per node of average weight (libketama's 40; four points each, so 160 points)."""

KETAMA_POINTS_PER_HASH = 4


def _labels_for(weight: float, n: int, total: float) -> int:
    # uhashring: (vnodes * len(nodes) * weight) // weight_sum, in integers when weights are.
    if float(weight).is_integer() and float(total).is_integer():
        return (KETAMA_VNODES * n * int(weight)) // int(total)
    return math.floor(KETAMA_VNODES * n * weight / total)


def build_continuum(nodes: Sequence[tuple[str, float]]) -> tuple[array[int], list[int]]:
    """The ring for *nodes* (in the order they were added): sorted points, and owner indexes.

    ``owners[i]`` is the index in *nodes* of the node owning ``points[i]``.
    Each point is packed with its owner's index into one int (``point << 32 |
    index``), so one sort orders the points and puts the later-added owner of a
    colliding point last, where it wins; no dict of 160 entries a node is built.
    """
    n = len(nodes)
    total = sum(weight for _, weight in nodes)
    packed: list[int] = []
    for index, (name, weight) in enumerate(nodes):
        prefix = name.encode() + b"-"
        raw = b"".join(
            md5(prefix + b"%d" % label, usedforsecurity=False).digest()
            for label in range(_labels_for(weight, n, total))
        )
        words = array("I")
        words.frombytes(raw)
        if sys.byteorder == "big":
            words.byteswap()
        shifted = map(operator.lshift, words, itertools.repeat(32))
        packed.extend(map(operator.or_, shifted, itertools.repeat(index)))
    packed.sort()
    points = array("I", map(operator.rshift, packed, itertools.repeat(32)))
    owners = list(map(operator.and_, packed, itertools.repeat(0xFFFFFFFF)))
    if len(points) > 1 and len(set(points)) < len(points):  # colliding points: the last wins
        keep = [i for i in range(len(points)) if i + 1 == len(points) or points[i + 1] != points[i]]
        points = array("I", [points[i] for i in keep])
        owners = [owners[i] for i in keep]
    return points, owners
