"""The commerce services on PostgreSQL and on MariaDB, once for both: no oversell from threads
and processes, no deadlock, the listing filters and batch reads of SQLite.

Runs on the machine's PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306),
each in a database created for this module and dropped after it, which also
holds the payment ledger every worker process shares. Inventory and money
invariants are checked after every test. What only PostgreSQL runs (faults at
every saga step, a worker SIGKILLed mid-saga, ...) is in ``test_commerce_postgres.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from commercekit.commerce import Commerce
from commercekit.payments import PaymentService
from commercekit.repository import Database
from tests.commerce._shop import check_batch_availability, check_listing_filters
from tests.integration import _commerce as h

pytestmark = pytest.mark.integration

stress = pytest.mark.skipif(
    not os.environ.get("COMMERCEKIT_STRESS"),
    reason="a longer run: set COMMERCEKIT_STRESS=1 (benchmarks/checkout.py measures more)",
)

SERVERS = {"postgresql": (h.POSTGRES, "PostgreSQL"), "mariadb": (h.MARIADB, "MariaDB")}
PROCESS_TIMEOUT_S = {"postgresql": 120.0, "mariadb": 180.0}

both = pytest.mark.parametrize("url", ["postgresql", "mariadb"], indirect=True)
stress_on_postgresql = pytest.mark.parametrize(
    "url", [pytest.param("postgresql", marks=stress), "mariadb"], indirect=True
)
"""Longer runs that MariaDB always does and PostgreSQL (its saga tests are longer) on request."""


@pytest.fixture(scope="module")
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A scratch database with the commerce tables and the payment ledger on one engine."""
    if request.param == "mariadb":
        pytest.importorskip("pymysql")
    with h.scratch_database(*SERVERS[request.param]) as url:
        db = h.open_database(url)
        h.create_schema(db, url)
        db.close()
        h.dispose_all()
        yield url


@pytest.fixture
def env(url: str) -> Iterator[tuple[Database, Commerce, PaymentService]]:
    with h.commerce_env(url, url) as env:
        yield env


@both
def test_fifty_threads_for_ten_units(env: tuple[Database, Commerce, PaymentService]) -> None:
    h.check_fifty_threads_for_ten_units(env[1])


@stress_on_postgresql
def test_fifty_buyers_from_five_processes_for_ten_units(
    env: tuple[Database, Commerce, PaymentService], url: str, request: pytest.FixtureRequest
) -> None:
    engine = request.node.callspec.params["url"]
    h.check_fifty_buyers_from_five_processes(env[1], url, url, timeout=PROCESS_TIMEOUT_S[engine])


@stress_on_postgresql
def test_two_hundred_baskets_in_random_order_from_eight_workers_never_deadlock(
    env: tuple[Database, Commerce, PaymentService],
) -> None:
    h.check_random_baskets_never_deadlock(env[1])


@both
def test_listing_filters_are_the_same_as_on_sqlite(
    env: tuple[Database, Commerce, PaymentService],
) -> None:
    check_listing_filters(env[1].catalog, h.sku("L"))


@both
def test_batch_availability_reads_in_portable_chunks(
    env: tuple[Database, Commerce, PaymentService],
) -> None:
    check_batch_availability(env[0], env[1].inventory, h.sku("B"))
