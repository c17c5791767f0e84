"""The contract every backend of the repository keeps: SQLite (a file), PostgreSQL, MariaDB.

Each backend runs twice: through :class:`Database` (sync drivers) and through
:class:`AsyncDatabase` (aiosqlite, psycopg async, asyncmy) behind
:class:`tests.repository.blocking.Blocking`, so the async twin passes the very
same tests. The same repository and unit-of-work behaviours run on each: get, get_many,
find with keyset pages, add, update with a stale version, delete, rollback on
error, read-only units of work refusing writes, routed reads and tokens.
PostgreSQL and MariaDB are the machine's servers (``127.0.0.1:5432``, user
``postgres``; ``127.0.0.1:3306``, user ``root``; database ``test``); each run
uses tables with a name of its own and drops them at the end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import String, desc
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from commercekit.errors import DuplicateError, InvalidInputError, NotFoundError
from commercekit.repository import (
    AsyncDatabase,
    Database,
    Node,
    ReadOnlyError,
    ReplicatedTopology,
    StaleVersionError,
    Versioned,
    async_engine_from_url,
    sqlite_engine,
)
from tests.conftest import server_engine
from tests.repository.blocking import Blocking

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
MARIADB_URL = "mysql://root@127.0.0.1:3306/test"
SUFFIX = uuid.uuid4().hex[:10]


class Base(DeclarativeBase):
    pass


class Product(Versioned, Base):
    __tablename__ = f"ck_contract_products_{SUFFIX}"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    sku: Mapped[str] = mapped_column(String(40), unique=True)
    category: Mapped[str] = mapped_column(String(20))
    price_minor: Mapped[int]


BACKENDS = [
    (kind, mode) for kind in ("sqlite", "postgresql", "mariadb") for mode in ("sync", "async")
]


@pytest.fixture(scope="module", params=BACKENDS, ids=[f"{k}-{m}" for k, m in BACKENDS])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    kind, mode = request.param
    if kind == "sqlite":
        engine = sqlite_engine(Path(tmp_path_factory.mktemp("contract")) / "shop.db")
    elif kind == "postgresql":
        engine = server_engine(POSTGRES_URL, "PostgreSQL")
    else:
        engine = server_engine(MARIADB_URL, "MariaDB")
    if mode == "async":
        url = engine.url.set(drivername=engine.url.get_backend_name())
        engine.dispose()
        yield from _async_database(url.render_as_string(hide_password=False))
        return
    db = Database(ReplicatedTopology(Node("primary", engine)))
    db.create_all(Base.metadata)
    try:
        yield db
    finally:
        db.drop_all(Base.metadata)
        db.close()
        engine.dispose()


def _async_database(url: str) -> Iterator[Database]:
    """The AsyncDatabase twin on *url*, behind its sync face (one loop for the module)."""
    loop = asyncio.new_event_loop()
    adb = AsyncDatabase(ReplicatedTopology(Node("primary", async_engine_from_url(url))))
    db: Any = Blocking(adb, loop)
    db.create_all(Base.metadata)
    try:
        yield db
    finally:
        try:
            db.drop_all(Base.metadata)
            db.dispose()
        finally:
            loop.close()


@pytest.fixture
def db(database: Database) -> Database:
    """The module's database with an empty table, seeded with 30 products."""
    with database.unit_of_work() as uow:
        uow.session.execute(sa.delete(Product))
        uow.repository(Product).add_all(
            Product(id=i, sku=f"sku-{i:03d}", category=_category(i), price_minor=100 * (i % 7))
            for i in range(1, 31)
        )
    return database


def _category(i: int) -> str:
    return ("books", "games", "tools")[i % 3]


def _ids(items: Any) -> list[int]:
    return [p.id for p in items]


def test_get_require_and_get_many(db: Database) -> None:
    with db.unit_of_work() as uow:
        repo = uow.repository(Product)
        assert repo.get(7).sku == "sku-007"
        assert repo.get(999) is None
        with pytest.raises(NotFoundError):
            repo.require(999)
        assert _ids(repo.get_many([9, 999, 2, 9])) == [9, 2]
        assert repo.get_many([]) == []
    routed = db.repository(Product)
    assert routed.require(3).category == "books"
    assert _ids(routed.get_many([30, 1])) == [30, 1]


def test_find_walks_keyset_pages_in_a_total_order(db: Database) -> None:
    rows = [(i, _category(i), 100 * (i % 7)) for i in range(1, 31)]
    rows.sort(key=lambda r: r[0], reverse=True)  # then "-id" breaks ties
    rows.sort(key=lambda r: r[2])  # then price ascending (stable sorts)
    rows.sort(key=lambda r: r[1], reverse=True)  # category descending first
    expected = [i for i, _, _ in rows]
    for reader in ("unit_of_work", "routed"):
        seen: list[int] = []
        after = None
        pages = 0
        while True:
            order = [desc(Product.category), Product.price_minor, "-id"]
            if reader == "routed":
                page = db.repository(Product).find(order_by=order, limit=8, after=after)
            else:
                with db.unit_of_work(read_only=True) as uow:
                    page = uow.repository(Product).find(order_by=order, limit=8, after=after)
            seen.extend(_ids(page))
            pages += 1
            after = page.next_after
            if after is None:
                break
        assert seen == expected, reader
        assert pages == 4
    page = db.repository(Product).find(Product.price_minor >= 500, category="games")
    assert _ids(page) == [13, 19]
    assert page.next_after is None
    assert db.repository(Product).count(category="tools") == 10


def test_add_and_a_duplicate_key_is_typed_and_nothing_is_half_written(db: Database) -> None:
    with db.unit_of_work() as uow:
        uow.repository(Product).add(Product(id=31, sku="sku-031", category="books", price_minor=1))

    def add_two() -> None:
        with db.unit_of_work() as uow:
            repo = uow.repository(Product)
            repo.add(Product(id=32, sku="sku-032", category="books", price_minor=1))
            repo.add(Product(id=33, sku="sku-031", category="books", price_minor=1))

    with pytest.raises(DuplicateError) as info:
        add_two()
    assert info.value.__cause__ is not None
    assert db.repository(Product).get(32) is None
    assert db.repository(Product).count() == 31


def test_update_with_a_stale_version_is_refused(db: Database) -> None:
    with db.unit_of_work() as uow:
        product = uow.repository(Product).update(1, expected_version=1, price_minor=999)
        assert product.version == 2
    with pytest.raises(StaleVersionError), db.unit_of_work() as uow:
        uow.repository(Product).update(1, expected_version=1, price_minor=1)
    stale = db.repository(Product).require(2)
    with db.unit_of_work() as uow:
        uow.repository(Product).update(2, price_minor=5)
    with pytest.raises(StaleVersionError), db.unit_of_work() as uow:
        uow.repository(Product).update(stale, price_minor=6)
    assert db.repository(Product).require(1).price_minor == 999
    assert db.repository(Product).require(2).price_minor == 5
    with pytest.raises(InvalidInputError), db.unit_of_work() as uow:
        uow.repository(Product).update(3, id=300)


def test_delete_checks_versions(db: Database) -> None:
    with pytest.raises(StaleVersionError), db.unit_of_work() as uow:
        uow.repository(Product).delete(1, expected_version=4)
    with db.unit_of_work() as uow:
        uow.repository(Product).delete(1, expected_version=1)
        uow.repository(Product).delete(uow.repository(Product).require(2))
    assert _ids(db.repository(Product).get_many([1, 2, 3])) == [3]
    assert db.repository(Product).count() == 28


def test_an_error_in_the_block_rolls_everything_back(db: Database) -> None:
    def work() -> None:
        with db.unit_of_work() as uow:
            repo = uow.repository(Product)
            repo.add(Product(id=40, sku="sku-040", category="books", price_minor=1))
            repo.update(5, price_minor=12345)
            repo.delete(6)
            raise RuntimeError("the payment failed")

    with pytest.raises(RuntimeError):
        work()
    routed = db.repository(Product)
    assert routed.get(40) is None
    assert routed.require(5).price_minor == 500
    assert routed.require(5).version == 1
    assert routed.get(6) is not None


def test_a_read_only_unit_of_work_refuses_writes(db: Database) -> None:
    with db.unit_of_work(read_only=True) as uow:
        repo = uow.repository(Product)
        with pytest.raises(ReadOnlyError):
            repo.add(Product(id=50, sku="sku-050", category="books", price_minor=1))
        uow.session.expunge_all()
        with pytest.raises(ReadOnlyError):
            repo.update(4, price_minor=1)
        uow.session.rollback()
        assert repo.require(4).price_minor == 400
    assert db.repository(Product).get(50) is None
    assert db.repository(Product).require(4).version == 1


def test_run_returns_a_token_that_reads_honour(db: Database) -> None:
    done = db.run(lambda uow: uow.repository(Product).update(8, price_minor=8).version, retry=True)
    assert done.value == 2
    assert done.token is not None
    assert done.token.startswith("ck1;main=")
    assert db.repository(Product).require(8, token=done.token).price_minor == 8
