"""Repositories and units of work on SQLite: add, page, update with versions, tokens."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from commercekit.repository import (
    Database,
    Node,
    ReplicatedTopology,
    StaleVersionError,
    Versioned,
    sqlite_engine,
)


class Base(DeclarativeBase):
    pass


class Customer(Versioned, Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))


db = Database(ReplicatedTopology(Node("primary", sqlite_engine())))  # in memory
db.create_all(Base.metadata)

with db.unit_of_work() as uow:  # commits at the end of the block
    uow.repository(Customer).add_all(Customer(id=i, name=f"customer {i}") for i in range(1, 8))
token = uow.token  # keep it in the session cookie: later reads see this commit
print("token:", token)

customers = db.repository(Customer)  # reads outside a unit of work (replicas first)
page = customers.find(order_by=["-id"], limit=3, token=token)
while True:
    print("page:", [c.name for c in page])
    if page.next_after is None:
        break
    page = customers.find(order_by=["-id"], limit=3, after=page.next_after, token=token)

seen = customers.require(1)  # version 1, as a web form would have shown it
with db.unit_of_work() as uow:
    uow.repository(Customer).update(1, name="Ada")  # someone else saves first
try:
    with db.unit_of_work() as uow:
        uow.repository(Customer).update(1, expected_version=seen.version, name="Bob")
except StaleVersionError as exc:
    print("conflict:", exc)
print("stored:", customers.require(1).name, "version", customers.require(1).version)
