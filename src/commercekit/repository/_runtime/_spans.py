"""What a unit of work's trace span says of the node that serves it.

Set on the span once the node is chosen (and again after a read-only unit of
work fails over to another), and only while spans record.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from weakref import WeakKeyDictionary

from sqlalchemy import Engine

from commercekit.repository._policy._routing import Role
from commercekit.repository._typing import TopologyNode

__all__ = ["node_span_attributes"]

_known: WeakKeyDictionary[Engine, dict[tuple[str, Role], Mapping[str, object]]] = (
    WeakKeyDictionary()
)


def node_span_attributes(node: TopologyNode, role: Role) -> Mapping[str, object]:
    """The span attributes of *node* serving as *role*, built once per node.

    ``commercekit.db.role`` (``primary`` or ``replica``) and ``commercekit.db.node``
    (its name in the topology), with OpenTelemetry's ``server.address`` and
    ``server.port`` where the engine's URL names a host (not SQLite's files).
    """
    engine = node.engine
    by_node = _known.get(engine)
    if by_node is None:
        by_node = _known.setdefault(engine, {})
    known = by_node.get((node.name, role))
    if known is None:
        attributes: dict[str, object] = {
            "commercekit.db.role": role.value,
            "commercekit.db.node": node.name,
        }
        url = engine.url
        if url.host:
            attributes["server.address"] = url.host
            if url.port is not None:
                attributes["server.port"] = url.port
        known = by_node[(node.name, role)] = MappingProxyType(attributes)
    return known
