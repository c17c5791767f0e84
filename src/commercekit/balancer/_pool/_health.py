"""A node's health: three states, one transition table, one ``transition()``.

::

              mark_down / checks fail
        UP  ─────────────────────────▶  DOWN
        │ ▲ ◀───────────────────────── ▲
        │ │   mark_up / checks pass     │
 eject  │ │ ejection ends,              │ checks fail
        ▼ │ mark_up, checks pass        │
      EJECTED ──────────────────────────┘

A node takes traffic only when UP; a node that has just become UP may still
be warming up (slow start), which is not a state of its own but a share that
grows with time.
"""

from __future__ import annotations

import enum

from commercekit.balancer._shown import shown
from commercekit.errors import InvalidStateError

__all__ = ["NodeHealth", "can_transition", "transition"]


class NodeHealth(enum.Enum):
    """Whether a node takes traffic, and if not, why."""

    UP = "up"
    """In service (possibly still warming up after a slow start)."""

    DOWN = "down"
    """Out of service: its health checks failed, or it was marked down."""

    EJECTED = "ejected"
    """Out of service for a while: callers reported too many consecutive failures."""


_TRANSITIONS: dict[NodeHealth, frozenset[NodeHealth]] = {
    NodeHealth.UP: frozenset({NodeHealth.DOWN, NodeHealth.EJECTED}),
    NodeHealth.DOWN: frozenset({NodeHealth.UP}),
    NodeHealth.EJECTED: frozenset({NodeHealth.UP, NodeHealth.DOWN}),
}


def can_transition(current: NodeHealth, target: NodeHealth) -> bool:
    """Say whether a node may go from *current* to *target*."""
    return target in _TRANSITIONS[current]


def transition(node: str, current: NodeHealth, target: NodeHealth) -> NodeHealth:
    """Return *target* if the move from *current* is legal, else raise InvalidStateError."""
    if target not in _TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in _TRANSITIONS[current]))
        raise InvalidStateError(
            f"node {shown(node)} cannot go from {current.value} to {target.value}; "
            f"from {current.value} it can go to: {allowed}"
        )
    return target
