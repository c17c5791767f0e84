"""The commerce services on MariaDB: no oversell from threads and processes, no deadlock.

Runs on the machine's MariaDB (127.0.0.1:3306) in a database created for this
module and dropped after it, which also holds the payment ledger every worker
process shares. Inventory invariants are checked after every test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commercekit.commerce import Commerce
from commercekit.payments import PaymentService, SqlAlchemyIdempotencyStore
from commercekit.repository import Database
from tests.commerce._shop import check_batch_availability, check_listing_filters
from tests.integration import _commerce as h

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def urls() -> Iterator[tuple[str, str]]:
    pytest.importorskip("pymysql")
    with h.scratch_database(h.MARIADB, "MariaDB") as url:
        db = h.open_database(url)
        db.create_all(__import__("commercekit.commerce", fromlist=["metadata"]).metadata)
        db.close()
        SqlAlchemyIdempotencyStore(h._engine(url)).create_tables()
        h.dispose_all()
        yield url, url


@pytest.fixture
def env(urls: tuple[str, str]) -> Iterator[tuple[Database, Commerce, PaymentService]]:
    with h.commerce_env(*urls) as env:
        yield env


def test_fifty_threads_for_ten_units(env: tuple[Database, Commerce, PaymentService]) -> None:
    h.check_fifty_threads_for_ten_units(env[1])


def test_fifty_buyers_from_five_processes_for_ten_units(
    env: tuple[Database, Commerce, PaymentService], urls: tuple[str, str]
) -> None:
    h.check_fifty_buyers_from_five_processes(env[1], *urls, timeout=180)


def test_two_hundred_baskets_in_random_order_from_eight_workers_never_deadlock(
    env: tuple[Database, Commerce, PaymentService],
) -> None:
    h.check_random_baskets_never_deadlock(env[1])


def test_listing_filters_are_the_same_as_on_sqlite(
    env: tuple[Database, Commerce, PaymentService],
) -> None:
    check_listing_filters(env[1].catalog, h.sku("L"))


def test_batch_availability_reads_in_portable_chunks(
    env: tuple[Database, Commerce, PaymentService],
) -> None:
    check_batch_availability(env[0], env[1].inventory, h.sku("B"))
