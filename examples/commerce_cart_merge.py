"""Carts that merge like Amazon's Dynamo cart: no add is lost, no removed line comes back."""

from __future__ import annotations

from commercekit.commerce import metadata
from commercekit.commerce.cart import Carts, CartState
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine

# Two app servers edit copies of one cart while they cannot see each other.
base = CartState().add("TEE-M", 1).add("MUG", 2)
server_a = base.remove("MUG").add("CAP", 1)  # removes the mugs it saw, adds a cap
server_b = base.add("MUG", 1).add("TEE-M", 1)  # meanwhile adds one more mug and a tee
print("merged either way:", server_a.merge(server_b).lines(), server_b.merge(server_a).lines())
print("the mug B added survives (add wins); the two A removed stay removed")

db = Database(ReplicatedTopology(Node("primary", sqlite_engine())))
db.create_all(metadata)
carts = Carts(db)
guest = carts.create("EUR")
carts.add(guest.id, "CAP", 2)
mine = carts.create("EUR", customer_id="ada")
carts.add(mine.id, "TEE-M", 1)
print("after login, the guest cart merged in:", carts.merge(guest.id, mine.id).lines)
