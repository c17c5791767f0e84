"""Three shards on SQLite: a customer id picks the shard; queries fan out and merge."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from commercekit.repository import (
    Database,
    Node,
    ReplicatedTopology,
    ShardedTopology,
    keys_to_move,
    sqlite_engine,
)


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int]
    total_minor: Mapped[int]


shards = ShardedTopology(
    [ReplicatedTopology(Node("primary", sqlite_engine()), name=f"s{i}") for i in (1, 2, 3)]
)
db = Database(shards, shard_keys={Order: "customer_id"})
db.create_all(Base.metadata)

for order_id in range(1, 13):
    customer_id = order_id % 5
    with db.unit_of_work(shard_key=customer_id) as uow:  # the customer's shard
        uow.repository(Order).add(
            Order(id=order_id, customer_id=customer_id, total_minor=order_id * 250)
        )

orders = db.repository(Order)
print("customer 3 lives on", db.shard_for(3))
print("customer 3:", [o.id for o in orders.list(customer_id=3, shard_key=3)])
print("all, merged:", [o.id for o in orders.list(order_by=["-total_minor"], limit=5)])
print("count over shards:", orders.count())
moves = keys_to_move(range(1000), ["s1", "s2", "s3"], ["s1", "s2", "s3", "s4"])
print(f"adding s4 moves {len(moves)} of 1000 customers, all to s4")
