"""Test doubles and recorders that commercekit ships for its users' tests.

Each one passes the same contract tests as the real implementations it
stands in for.
"""

from __future__ import annotations

from .metrics import InMemoryMetrics

__all__ = ["InMemoryMetrics"]
