"""The cart store seam: where ``Carts`` keeps its carts, and what a store must promise.

``Carts`` holds the cart's rules (the mergeable lines, what an open cart
takes, guest merges, events and metrics); a :class:`CartStore` only keeps
records and swaps them atomically. Two ship: :class:`SqlCartStore` (the
default, the ``ck_carts`` table in the commerce database) and
:class:`RedisCartStore` (a fast store whose carts expire when left alone, the
way hosted storefronts keep carts out of the order database).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import attrs

from commercekit.repository import UnitOfWork

from ._crdt import CartState

__all__ = ["CartChange", "CartRecord", "CartStatus", "CartStore"]


class CartStatus(enum.Enum):
    """A cart is open until it is completed (ordered), merged into another, or expires.

    A checkout freezes it before the payment (it takes no changes then), and
    either completes it or opens it again (open -> frozen -> completed | open),
    the way Oscar freezes a basket.
    """

    OPEN = "open"
    FROZEN = "frozen"
    COMPLETED = "completed"
    MERGED = "merged"
    EXPIRED = "expired"


@attrs.frozen
class CartRecord:
    """A cart as a store keeps it: every field ``Carts`` reads back.

    *version* goes up by one on every write; *updated_at* is the injected
    clock's time of the last write (abandoned carts are found by it).
    *stamp* tells this cart from an earlier one under the same id: a store that
    frees the ids of carts it dropped (Redis, by their time to live) keeps the
    random value drawn when the cart was made through every write; the SQL
    store never frees an id and keeps ``""``.
    """

    id: str
    customer_id: str | None
    currency: str
    state: CartState
    voucher: str | None
    version: int
    status: CartStatus
    created_at: float
    updated_at: float
    stamp: str = ""


CartChange = Callable[[tuple[CartRecord, ...]], Sequence[CartRecord] | None]
"""What :meth:`CartStore.update` applies: the records read in, the records to write out
(each with its version one above the one read), or None to write nothing."""


@runtime_checkable
class CartStore(Protocol):
    """Keeps cart records; every write is a compare-and-set on what was read.

    Each backend passes the contract suite in ``tests/commerce/test_cart_store_contract.py``.
    """

    @property
    def transactional(self) -> bool:
        """True when the store writes through the commerce database's units of work.

        The checkout then freezes, closes or opens the cart again in its own
        transactions (the attempt's start, completion and end); otherwise just
        after them. A crash in between leaves the cart frozen (it takes no
        change) until a replay or ``recover()`` closes or opens it (both are
        idempotent), so an ordered cart never takes lines or merges again.
        """
        ...

    def insert(self, record: CartRecord) -> None:
        """Keep a new cart; :class:`DuplicateError` when *record.id* is taken."""
        ...

    def get(self, cart_id: str, *, uow: UnitOfWork | None = None) -> CartRecord:
        """The cart, or :class:`NotFoundError` (read in *uow* when the store is transactional)."""
        ...

    def update(
        self, cart_ids: Sequence[str], change: CartChange, *, max_retries: int
    ) -> tuple[CartRecord, ...]:
        """Read *cart_ids*, apply *change*, write what it returns, all or nothing.

        The write happens only if no cart changed since it was read; otherwise
        the store reads again and calls *change* again, at most *max_retries*
        times (then :class:`ConflictError`). An error *change* raises ends the
        call with nothing written. Returns what was written (or read, when
        *change* returned None), in the order of *cart_ids*.
        """
        ...

    def complete(
        self,
        cart_id: str,
        now: float,
        *,
        uow: UnitOfWork | None = None,
        stamp: str | None = None,
    ) -> bool:
        """Mark an open or frozen cart completed: True, or False when it was completed already.

        :class:`InvalidStateError` when it was merged or expired instead. With
        *stamp*, only the cart with that stamp (another one made under the same
        id since is left alone: False).
        """
        ...

    def freeze(
        self, cart_id: str, version: int, now: float, *, uow: UnitOfWork | None = None
    ) -> bool:
        """Freeze the cart if it is still at *version* (open, or frozen and not thawed since).

        The version goes up by one. False when the cart changed since *version*
        was read; :class:`InvalidStateError` when it is completed, merged or expired.
        """
        ...

    def thaw(
        self,
        cart_id: str,
        now: float,
        *,
        version: int | None = None,
        uow: UnitOfWork | None = None,
    ) -> bool:
        """Open a frozen cart again (only at *version*, when given): True if it moved.

        False when it is not frozen (or not at *version*); :class:`NotFoundError`
        when there is no such cart.
        """
        ...

    def expire_idle(self, cutoff: float, *, limit: int) -> int:
        """Mark open carts last written before *cutoff* expired (at most *limit*); how many."""
        ...
