"""Shared fixtures and the rule for tests that need real services.

A test that needs a server the machine lacks skips with a clear reason, unless
``COMMERCEKIT_REQUIRE_SERVICES=1`` is set (as ``.ci/run`` sets it): then it fails,
so a CI machine without the service cannot pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

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


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[object]:
    """A PostgreSQL primary with two streaming standbys (``standby1``, ``standby2``).

    Started once per session in a temporary folder on free loopback ports, and
    stopped at the end of the session even when tests fail. It lives here, not
    in tests/integration, so the integration tests and the shop's PostgreSQL
    test share one cluster (the shop works in a database of its own).
    """
    from tests.integration._servers import PgCluster, pg_missing

    reason = pg_missing()
    if reason is not None:
        missing_service(reason)
    with PgCluster(standbys=2) as cluster:
        yield cluster
