"""The balancer's metrics catalogue: every instrument, created once, with its tags.

Balancer-wide instruments are created when the balancer is built, per-node
ones when the node is added; the hot path then makes one method call at most.
All names follow ``commercekit_balancer_<name>[_<unit>]``; counters end in
``_total``.
"""

from __future__ import annotations

import attrs

from commercekit.metrics import Counter, Gauge, Histogram, Metrics

from ._health import NodeHealth

__all__ = ["BalancerInstruments", "NodeInstruments"]

_P = "commercekit_balancer_"


@attrs.frozen
class BalancerInstruments:
    """The instruments one balancer reports through, tagged ``balancer=<name>``."""

    picks: Counter
    reroutes: Counter
    spills: Counter
    nodes: Gauge
    healthy_nodes: Gauge
    panic: Gauge
    rebuild: Histogram

    @classmethod
    def create(cls, metrics: Metrics, balancer: str) -> BalancerInstruments:
        """Create (or find) every balancer-wide series of *balancer* in *metrics*."""
        tags = {"balancer": balancer}
        return cls(
            picks=metrics.counter(
                _P + "picks_total",
                description="Nodes picked for a key or a request (counted when metrics are on).",
                tags=tags,
            ),
            reroutes=metrics.counter(
                _P + "reroutes_total",
                description="Picks whose first-choice node was out of service or warming up.",
                tags=tags,
            ),
            spills=metrics.counter(
                _P + "bounded_spills_total",
                description="Leases that passed over at least one node at its bounded-load cap.",
                tags=tags,
            ),
            nodes=metrics.gauge(
                _P + "nodes", description="Nodes in the balancer, in service or not.", tags=tags
            ),
            healthy_nodes=metrics.gauge(
                _P + "healthy_nodes", description="Nodes in service (health UP).", tags=tags
            ),
            panic=metrics.gauge(
                _P + "panic",
                description="1 while too few nodes are healthy and picks ignore health.",
                tags=tags,
            ),
            rebuild=metrics.histogram(
                _P + "rebuild_seconds",
                description="Time to build a lookup table after a membership change.",
                tags=tags,
            ),
        )


@attrs.frozen
class NodeInstruments:
    """The instruments of one node, tagged ``balancer=<name>, node=<node>``."""

    in_flight: Gauge
    ejections: Counter
    transitions: dict[NodeHealth, Counter]

    @classmethod
    def create(cls, metrics: Metrics, balancer: str, node: str) -> NodeInstruments:
        """Create (or find) the series of *node* in *balancer*."""
        tags = {"balancer": balancer, "node": node}
        return cls(
            in_flight=metrics.gauge(
                _P + "in_flight",
                description="Leases held on the node (acquire() and acquire_node() in flight).",
                tags=tags,
            ),
            ejections=metrics.counter(
                _P + "ejections_total",
                description="Times outlier detection ejected the node.",
                tags=tags,
            ),
            transitions={
                health: metrics.counter(
                    _P + "health_transitions_total",
                    description="Health changes of the node, by the state it went to.",
                    tags={**tags, "to": health.value},
                )
                for health in NodeHealth
            },
        )
