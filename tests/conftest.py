"""Shared fixtures and the rule for tests that need real services.

A test that needs a server the machine lacks skips with a clear reason, unless
``COMMERCEKIT_REQUIRE_SERVICES=1`` is set (as ``.ci/run`` sets it): then it fails,
so a CI machine without the service cannot pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    import sqlalchemy as sa

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


def server_engine(url: str, what: str) -> sa.Engine:
    """A sync engine on the database server at *url* that answered ``select 1``, or skip.

    *what* names the server in the reason (``PostgreSQL``, ``MariaDB``); a
    missing driver skips too. The caller disposes the engine.
    """
    import sqlalchemy as sa

    from commercekit.repository import engine_from_url

    try:
        engine = engine_from_url(url, connect_timeout_s=3)
    except ImportError as exc:
        missing_service(f"the {what} driver is not installed ({exc})")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        missing_service(f"{what} is not reachable at {url} ({exc.orig})")
    return engine


def redis_reachable() -> bool:
    """Whether the machine's Redis answers on 127.0.0.1:6379."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


def need_redis() -> None:
    """Skip (or fail, under COMMERCEKIT_REQUIRE_SERVICES=1) without a reachable Redis."""
    if not redis_reachable():
        missing_service("Redis is not reachable on 127.0.0.1:6379")


@pytest.fixture
def require_redis() -> None:
    """The machine's Redis on 127.0.0.1:6379, or the test skips (fails under CI)."""
    need_redis()


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
