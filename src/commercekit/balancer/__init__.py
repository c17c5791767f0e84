"""Pick a backend for a key, or for a request, and route around trouble.

Keyed (consistent hashing) balancers send a key to the same node every time,
from every process that knows the same nodes:

- :class:`MaglevBalancer`, the default: a Maglev lookup table, O(1) picks,
  every node's share of the key space its weight's share to within one slot;
- :class:`KetamaBalancer`: the libketama ring, key for key as ``uhashring``
  and memcached clients place keys, for users moving from them.

For traffic without affinity, :class:`RoundRobinBalancer` (weighted) and
:class:`LeastLoadedBalancer` (power of two choices). All four share one health
machinery: nodes marked down (by hand or by a :class:`HealthChecker` with a
:class:`TcpProbe`, :class:`HttpProbe` or any :class:`HealthProbe`), ejected by
passive :class:`OutlierDetection`, warming up under :class:`SlowStart`, and a
panic threshold below which picks ignore health. Health is an overlay: a node
out of service keeps its place, so only its keys move and they come back.

Nothing starts at import; a checker's thread starts with ``start()``.
"""

from ._capped_balancer import CappedRingBalancer
from ._checking._checker import HealthChecker
from ._checking._probes import CallableProbe, HttpProbe, TcpProbe
from ._ketama_balancer import KetamaBalancer
from ._maglev_balancer import MaglevBalancer
from ._placement._hashing import hash_key
from ._placement._maglev import DEFAULT_TABLE_SIZE
from ._policies import LeastLoadedBalancer, RoundRobinBalancer
from ._pool._health import NodeHealth
from ._pool._lease import Lease
from ._pool._member import Nodes, NodeStatus
from ._pool._options import OutlierDetection, SlowStart
from ._typing import Clock, Hasher, HealthProbe, HealthTarget, Key, KeyedBalancer

__all__ = [
    "DEFAULT_TABLE_SIZE",
    "CallableProbe",
    "CappedRingBalancer",
    "Clock",
    "Hasher",
    "HealthChecker",
    "HealthProbe",
    "HealthTarget",
    "HttpProbe",
    "KetamaBalancer",
    "Key",
    "KeyedBalancer",
    "Lease",
    "LeastLoadedBalancer",
    "MaglevBalancer",
    "NodeHealth",
    "NodeStatus",
    "Nodes",
    "OutlierDetection",
    "RoundRobinBalancer",
    "SlowStart",
    "TcpProbe",
    "hash_key",
]
