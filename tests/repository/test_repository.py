from __future__ import annotations

import base64

import pytest
from sqlalchemy import desc, select

from commercekit.errors import DuplicateError, InvalidInputError, NotFoundError
from commercekit.repository import Database, StaleVersionError, decode_cursor

from .models import Customer, Note, Order, customer


def seed(db: Database, n: int = 30) -> None:
    with db.unit_of_work() as uow:
        uow.repository(Customer).add_all(
            customer(i, tier="gold" if i % 3 == 0 else "basic") for i in range(1, n + 1)
        )


def test_add_get_require_get_many(db: Database) -> None:
    seed(db, 5)
    with db.unit_of_work() as uow:
        repo = uow.repository(Customer)
        assert repo.get(2).name == "c0002"
        assert repo.get(99) is None
        with pytest.raises(NotFoundError):
            repo.require(99)
        assert [c.id for c in repo.get_many([4, 99, 1, 4])] == [4, 1]
        assert repo.get_many([]) == []
        assert repo.count() == 5
        assert repo.count(tier="basic") == 4


def test_find_pages_with_keyset_cursors(db: Database) -> None:
    seed(db)
    with db.unit_of_work(read_only=True) as uow:
        repo = uow.repository(Customer)
        seen: list[int] = []
        after = None
        pages = 0
        while True:
            page = repo.find(order_by=[desc(Customer.tier), "-id"], limit=7, after=after)
            seen.extend(c.id for c in page)
            pages += 1
            after = page.next_after
            if after is None:
                break
        gold = sorted((i for i in range(1, 31) if i % 3 == 0), reverse=True)
        basic = sorted((i for i in range(1, 31) if i % 3), reverse=True)
        assert seen == gold + basic
        assert pages == 5
        page = repo.find(Customer.id > 25, tier="basic", order_by=[Customer.name])
        assert [c.id for c in page] == [26, 28, 29]
        assert page.next_after is None
        assert len(repo.list(limit=4)) == 4


def test_find_refuses_bad_input(db: Database) -> None:
    with db.unit_of_work(read_only=True) as uow:
        repo = uow.repository(Customer)
        with pytest.raises(InvalidInputError):
            repo.find(order_by=["nope"])
        with pytest.raises(InvalidInputError):
            repo.find(colour="red")
        with pytest.raises(InvalidInputError):
            repo.find(limit=0)
        with pytest.raises(InvalidInputError):
            repo.find(after="!!not-a-cursor")


def _raw(text: bytes) -> str:
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _raw(b"[" * 3000),  # 4000 characters: nested past the interpreter's stack
        _raw(b"[" * 1500 + b"]" * 1500),
        _raw(b'[["v",' + b"[" * 1400 + b"]" * 1400 + b"]]"),
        _raw(b'[["v",[1,2]]]'),  # a value is a JSON scalar, never an array or object
        _raw(b'[["v",{"a":1}]]'),
        _raw(b'[["i","' + b"9" * 5000 + b'"]]'),
        _raw(b'[["d","1e999999999"]]'),
        _raw(b"\xff\xfe"),
        _raw(b"9" * 3000),  # past int's string conversion limit
        "",
        "=",
        "x" * 4097,
    ],
)
def test_a_crafted_cursor_is_a_typed_error(db: Database, cursor: str) -> None:
    with pytest.raises(InvalidInputError, match="cursor"):
        decode_cursor(cursor)
    with db.unit_of_work(read_only=True) as uow, pytest.raises(InvalidInputError):
        uow.repository(Customer).find(order_by=["-id"], after=cursor)
    with pytest.raises(InvalidInputError):
        db.repository(Customer).find(order_by=["-id"], after=cursor)


@pytest.mark.parametrize("cursor", [7, None, b"W1tdXQ", ["W1tdXQ"]])
def test_a_cursor_that_is_no_str_is_a_typed_error(cursor: object) -> None:
    with pytest.raises(InvalidInputError, match="cursor"):
        decode_cursor(cursor)  # type: ignore[arg-type]


def test_update_checks_versions(db: Database) -> None:
    seed(db, 3)
    with db.unit_of_work() as uow:
        c = uow.repository(Customer).update(1, expected_version=1, name="Ada")
        assert c.version == 2
    with pytest.raises(StaleVersionError), db.unit_of_work() as uow:
        uow.repository(Customer).update(1, expected_version=1, name="Bob")
    with db.unit_of_work() as uow:
        assert uow.repository(Customer).require(1).name == "Ada"
        with pytest.raises(InvalidInputError):
            uow.repository(Customer).update(1, id=7)


def test_update_of_a_detached_stale_object_conflicts(db: Database) -> None:
    seed(db, 2)
    stale = db.repository(Customer).require(2)
    with db.unit_of_work() as uow:
        uow.repository(Customer).update(2, name="first")
    with pytest.raises(StaleVersionError), db.unit_of_work() as uow:
        uow.repository(Customer).update(stale, name="second")
    fresh = db.repository(Customer).require(2)
    with db.unit_of_work() as uow:
        assert uow.repository(Customer).update(fresh, name="third").version == 3


def test_delete_and_versions(db: Database) -> None:
    seed(db, 3)
    with pytest.raises(StaleVersionError), db.unit_of_work() as uow:
        uow.repository(Customer).delete(1, expected_version=5)
    with db.unit_of_work() as uow:
        uow.repository(Customer).delete(1, expected_version=1)
        uow.repository(Customer).delete(uow.repository(Customer).require(2))
    assert db.repository(Customer).count() == 1
    with db.unit_of_work() as uow:
        uow.repository(Note).add(Note(id=1, body="x"))
        with pytest.raises(InvalidInputError):
            uow.repository(Note).update(1, expected_version=1, body="y")


def test_duplicate_key_is_a_typed_error_and_nothing_is_half_written(db: Database) -> None:
    seed(db, 1)
    uow = db.unit_of_work().begin()
    uow.repository(Customer).add(customer(2))
    with pytest.raises(DuplicateError) as info:
        uow.repository(Customer).add(customer(1))
    uow.rollback()
    uow.close()
    assert info.value.__cause__ is not None
    assert db.repository(Customer).count() == 1


def test_plain_sqlalchemy_stays_reachable(db: Database) -> None:
    seed(db, 2)
    with db.unit_of_work() as uow:
        uow.session.add(Order(id=1, customer_id=1, total_minor=1250))
        total = uow.session.scalar(select(Order.total_minor).where(Order.id == 1))
        assert total == 1250
        assert uow.repository(Order).session is uow.session


@pytest.mark.parametrize("key", [2**63, -(2**63) - 1, 10**30])
def test_a_key_past_the_database_integer_is_a_typed_error(db: Database, key: int) -> None:
    seed(db, 2)
    with db.unit_of_work(read_only=True) as uow:
        repo = uow.repository(Customer)
        with pytest.raises(InvalidInputError):
            repo.get(key)
        with pytest.raises(InvalidInputError):
            repo.get_many([1, key])
        with pytest.raises(InvalidInputError):
            repo.find(id=key)
        with pytest.raises(InvalidInputError):
            repo.count(id=key)
        assert repo.get(1) is not None  # the unit of work goes on
