"""The health state machine: one table of legal moves, a typed error for the rest."""

from __future__ import annotations

import pytest

from commercekit.balancer import NodeHealth
from commercekit.balancer._pool._health import can_transition, transition
from commercekit.errors import InvalidStateError

UP, DOWN, EJECTED = NodeHealth.UP, NodeHealth.DOWN, NodeHealth.EJECTED
LEGAL = {(UP, DOWN), (UP, EJECTED), (DOWN, UP), (EJECTED, UP), (EJECTED, DOWN)}


@pytest.mark.parametrize("current", list(NodeHealth))
@pytest.mark.parametrize("target", list(NodeHealth))
def test_transition_table(current: NodeHealth, target: NodeHealth) -> None:
    legal = (current, target) in LEGAL
    assert can_transition(current, target) is legal
    if legal:
        assert transition("web-1", current, target) is target
    else:
        with pytest.raises(InvalidStateError, match=f"'web-1' cannot go from {current.value}"):
            transition("web-1", current, target)
