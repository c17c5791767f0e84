"""Shared fixtures and the rule for tests that need real services.

A test that needs a server the machine lacks skips with a clear reason, unless
``COMMERCEKIT_REQUIRE_SERVICES=1`` is set (as ``.ci/run`` sets it): then it fails,
so a CI machine without the service cannot pass by skipping.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def services_required() -> bool:
    """Say whether missing services must fail the run instead of skipping."""
    return os.environ.get("COMMERCEKIT_REQUIRE_SERVICES") == "1"


def missing_service(reason: str) -> None:
    """Skip the current test for *reason*, or fail it when services are required."""
    if services_required():
        pytest.fail(f"{reason} (COMMERCEKIT_REQUIRE_SERVICES=1 is set, so this fails)")
    pytest.skip(reason)
