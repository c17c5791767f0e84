"""Models the repository tests use, as an application would define them."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from commercekit.repository import Versioned


class Base(DeclarativeBase):
    pass


class Customer(Versioned, Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str] = mapped_column(String(120), unique=True)
    tier: Mapped[str] = mapped_column(String(20), default="basic")


class Order(Versioned, Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    total_minor: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default="open")


class Note(Base):
    """A model without a version column."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(200))


def customer(i: int, **kw: object) -> Customer:
    return Customer(id=i, name=kw.pop("name", f"c{i:04d}"), email=f"c{i}@example.test", **kw)
