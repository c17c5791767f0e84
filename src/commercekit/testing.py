"""Test doubles and recorders that commercekit ships for its users' tests.

Each one passes the same contract tests as the real implementations it
stands in for (``tests/contract/``).
"""

from __future__ import annotations

from commercekit._eventlog_memory import InMemoryEventLog
from commercekit.cdn import ManualClock, MockOrigin
from commercekit.metrics import InMemoryMetrics
from commercekit.payments import (
    InMemoryIdempotencyStore,
    InMemoryVaultStore,
    MockTransport,
    SandboxGateway,
)

__all__ = [
    "InMemoryEventLog",
    "InMemoryIdempotencyStore",
    "InMemoryMetrics",
    "InMemoryVaultStore",
    "ManualClock",
    "MockOrigin",
    "MockTransport",
    "SandboxGateway",
]
