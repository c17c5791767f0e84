"""A node's mutable cell, shared by every lookup table, and its public snapshot.

Lookup tables hold references to these cells, not names, so a health flip is
one attribute write on the cell, seen at once by every table, and a pick reads
``cell.serving`` (the name while the node is fully in service, else None) and nothing
else.
Writes happen under the balancer's lock; picks read without one.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping

import attrs

from commercekit.balancer._shown import shown
from commercekit.errors import DuplicateError, InvalidInputError

from ._health import NodeHealth
from ._instruments import NodeInstruments

__all__ = ["Member", "NodeStatus", "Nodes", "check_name", "check_weight", "parse_nodes"]

Nodes = Iterable[str] | Mapping[str, float]
"""Nodes as names (weight 1 each) or as a mapping of name to weight."""


MIN_WEIGHT = 1e-9
"""The smallest node weight: weights are relative, and their ratios must stay finite."""

MAX_WEIGHT = 1e12
"""The largest node weight: a million nodes of it still sum to a finite float."""


def check_name(name: object) -> str:
    """Return *name* if it is a usable node name (a non-empty ``str`` that UTF-8 can encode)."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"a node name must be a non-empty str, got {shown(name)}")
    try:
        name.encode()
    except UnicodeEncodeError:
        raise InvalidInputError(
            f"node name {shown(name)} is not valid Unicode (it holds a lone surrogate); "
            f"node names are hashed as UTF-8"
        ) from None
    return name


def _shown(number: float) -> str:
    """*number* for an error message, without printing thousands of digits."""
    if isinstance(number, int) and number.bit_length() > 64:
        return f"an int of {number.bit_length()} bits"
    return repr(number)


def check_weight(name: str, weight: object) -> float:
    """Return *weight* as a float if it is a number from MIN_WEIGHT to MAX_WEIGHT."""
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise InvalidInputError(
            f"node {shown(name)}: weight must be a number, not {type(weight).__name__}"
        )
    if not weight > 0:
        raise InvalidInputError(
            f"node {shown(name)}: weight must be positive, got {weight!r}; "
            f"remove the node instead of giving it weight 0"
        )
    if not MIN_WEIGHT <= weight <= MAX_WEIGHT:  # also NaN and inf; no float() of a huge int
        raise InvalidInputError(
            f"node {shown(name)}: weight must be positive and finite, from {MIN_WEIGHT:g} to "
            f"{MAX_WEIGHT:g}, got "
            f"{_shown(weight)}; weights are relative, so scale them all into that range"
        )
    return float(weight)


def parse_nodes(nodes: Nodes) -> dict[str, float]:
    """Validate *nodes* into ``{name: weight}``, in the order given."""
    if isinstance(nodes, str | bytes):
        raise InvalidInputError(
            f"nodes must be a list of names or a mapping of name to weight, not a single "
            f"{type(nodes).__name__} ({nodes!r:.80}); write [{nodes!r:.80}]"
        )
    if not isinstance(nodes, Iterable) or isinstance(nodes, bytearray | memoryview):
        raise InvalidInputError(
            f"nodes must be a list of names or a mapping of name to weight, "
            f"not {type(nodes).__name__}"
        )
    parsed: dict[str, float] = {}
    if isinstance(nodes, Mapping):
        for name, weight in nodes.items():
            parsed[check_name(name)] = check_weight(name, weight)
        return parsed
    for name in nodes:
        if check_name(name) in parsed:
            raise DuplicateError(
                f"node {shown(name)} is listed twice; each node name must be unique"
            )
        parsed[name] = 1.0
    return parsed


class Member:
    """One node's state. ``serving`` is its name exactly when it is a member, UP and fully warm.

    Picks read that one attribute: a name to return, or None to look further.
    """

    # ``serving`` comes first so that it shares the object's first cache line with its
    # header, which a pick touches anyway: one cache line per pick, not two.
    __slots__ = (  # noqa: RUF023
        "serving",
        "name",
        "live",
        "health",
        "warm_since",
        "eject_until",
        "ejection_level",
        "ejections",
        "failures",
        "leases",
        "instruments",
        "last_ejection_end",
        "weight",
    )

    def __init__(self, name: str, weight: float, instruments: NodeInstruments | None) -> None:
        self.name = name
        self.weight = weight
        self.live = True
        self.health = NodeHealth.UP
        self.serving: str | None = name
        self.warm_since: float | None = None
        self.eject_until = 0.0
        self.ejections = 0
        self.ejection_level = 0
        self.last_ejection_end = -math.inf
        self.failures = 0
        # One item per lease held: deque appends and pops are atomic, so a release
        # takes no lock (acquire's cap check runs under the balancer's lock).
        self.leases: deque[None] = deque()
        self.instruments = instruments

    def __repr__(self) -> str:
        return f"<Member {self.name!r} {self.health.value} ok={self.ok} live={self.live}>"

    @property
    def in_flight(self) -> int:
        """Leases held on the node."""
        return len(self.leases)

    @property
    def ok(self) -> bool:
        """Whether the node takes every one of its keys right now."""
        return self.serving is not None


@attrs.frozen
class NodeStatus:
    """A node as the balancer saw it at one moment."""

    name: str
    weight: float
    health: NodeHealth
    share: float
    """The fraction of its keys the node takes now: 1.0 in service, less while warming up, 0 out."""
    in_flight: int
    """Leases held on the node (``acquire()``) and not yet released."""
    ejections: int
    """How many times outlier detection has ejected the node."""
    consecutive_failures: int
    """Failures reported in a row since the last success."""
