"""The asyncio repository on SQLite (aiosqlite): the same calls as the sync one, awaited.

In an ``async def`` handler (FastAPI, Starlette) these calls do not block the
event loop. On PostgreSQL (psycopg async) or MariaDB (asyncmy) only the URL
changes: ``ReplicatedTopology.from_urls(primary, replicas, asyncio=True)``.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from commercekit.repository import (
    AsyncDatabase,
    AsyncUnitOfWork,
    Node,
    ReplicatedTopology,
    StaleVersionError,
    Versioned,
    async_engine_from_url,
)


class Base(DeclarativeBase):
    pass


class Customer(Versioned, Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))


async def main() -> None:
    engine = async_engine_from_url("sqlite://")  # in memory, shared by every session
    db = AsyncDatabase(ReplicatedTopology(Node("primary", engine)))
    await db.create_all(Base.metadata)

    async with db.unit_of_work() as uow:  # commits at the end of the block
        await uow.repository(Customer).add_all(
            Customer(id=i, name=f"customer {i}") for i in range(1, 8)
        )
    token = await uow.token()  # keep it in the session cookie: later reads see this commit
    print("token:", token)

    customers = db.repository(Customer)  # reads outside a unit of work (replicas first)
    page = await customers.find(order_by=["-id"], limit=3, token=token)
    while True:
        print("page:", [c.name for c in page])
        if page.next_after is None:
            break
        page = await customers.find(order_by=["-id"], limit=3, after=page.next_after, token=token)

    # Many requests at once on one loop: each get is its own short read.
    found = await asyncio.gather(*(customers.require(i) for i in range(1, 8)))
    print("gathered:", len(found), "customers")

    seen = await customers.require(1)  # version 1, as a web form would have shown it

    async def rename(uow: AsyncUnitOfWork) -> int:
        return (await uow.repository(Customer).update(1, name="Ada")).version

    done = await db.run(rename, retry=True)  # someone else saves first
    print("renamed to version", done.value, "token", await done.token())
    try:
        async with db.unit_of_work() as uow:
            await uow.repository(Customer).update(1, expected_version=seen.version, name="Bob")
    except StaleVersionError as exc:
        print("conflict:", exc)

    async with db.unit_of_work(read_only=True) as uow:  # plain AsyncSession for the rest
        names = (await uow.session.scalars(select(Customer.name).order_by(Customer.id))).all()
    print("stored:", names[:3], "...")
    await db.dispose()  # listeners off, pooled connections closed


if __name__ == "__main__":
    asyncio.run(main())
