"""The mergeable cart of Amazon's Dynamo paper: an add-wins observed-remove map of SKU to quantity.

Every add (or quantity change) is an immutable *dot*, a random id carrying a
SKU and a positive quantity. A removal records, as tombstones, only the dots
its writer had seen. A line's quantity is the sum of its live dots (those not
tombstoned). Merging two copies is the union of their dots and the union of
their tombstones, so merge is commutative, associative and idempotent; an add
the remover had not seen survives (add wins), and a removed dot can never come
back, whatever copies are merged in whatever order.

Setting a quantity is "remove the dots I see, add one dot with the new
quantity": two writers setting a line at once both keep their dots, so the
quantities add up (the add-wins choice: nothing a customer put in is lost).

Tombstones are needed only while some copy that has not seen the removal may
still be merged in (it would bring the dot back). :meth:`CartState.compact`
drops removed dots with their tombstones; call it only when no such copy can
exist. ``Carts`` (the persisted cart) compacts on every write: each write
replaces the row by compare-and-set on its version, and a writer that lost
the race reads the row again and re-applies its *operation* to it (it never
merges the older copy it held), while a merged guest cart is closed and never
merged again; so once a removal is stored no copy that lacks it reaches the
row. Code that merges copies kept elsewhere (in a browser, on another
replica) must keep the tombstones until every copy has seen them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping

import attrs

from commercekit._json import read_json
from commercekit.commerce._shared import MAX_QUANTITY, check_id, check_quantity
from commercekit.errors import InvalidInputError

__all__ = ["CartState", "Dot"]


@attrs.frozen
class Dot:
    """One add: its unique id, the SKU and the quantity it added."""

    id: str
    sku: str
    qty: int


def _dot_id() -> str:
    return secrets.token_hex(8)


@attrs.frozen
class CartState:
    """An immutable cart copy: live and removed dots. Every operation returns a new state."""

    dots: Mapping[str, Dot] = attrs.field(factory=dict)
    removed: frozenset[str] = attrs.field(factory=frozenset)

    # -- reading ------------------------------------------------------------------------

    def lines(self) -> dict[str, int]:
        """SKU -> quantity of every line with a positive quantity, sorted by SKU."""
        out: dict[str, int] = {}
        for dot in self.dots.values():
            if dot.id not in self.removed:
                out[dot.sku] = out.get(dot.sku, 0) + dot.qty
        return dict(sorted(out.items()))

    def quantity(self, sku: str) -> int:
        """The quantity of *sku* (0 when it is not in the cart)."""
        return self.lines().get(sku, 0)

    # -- changing -----------------------------------------------------------------------

    def add(self, sku: str, qty: int, *, dot_id: str | None = None) -> CartState:
        """Add *qty* of *sku* (never fails for stock: stock is checked at checkout)."""
        check_id(sku, "sku")
        check_quantity(qty)
        if self.quantity(sku) + qty > MAX_QUANTITY:
            raise InvalidInputError(f"a cart line holds at most {MAX_QUANTITY} of {sku!r}")
        dot = Dot(dot_id or _dot_id(), sku, qty)
        return CartState({**self.dots, dot.id: dot}, self.removed)

    def remove(self, sku: str) -> CartState:
        """Remove the line of *sku*: tombstone every dot of it this copy has seen."""
        check_id(sku, "sku")
        seen = {d.id for d in self.dots.values() if d.sku == sku and d.id not in self.removed}
        return CartState(self.dots, self.removed | seen)

    def set(self, sku: str, qty: int, *, dot_id: str | None = None) -> CartState:
        """Set the quantity of *sku* (0 removes the line)."""
        check_quantity(qty, allow_zero=True)
        cleared = self.remove(sku)
        return cleared if qty == 0 else cleared.add(sku, qty, dot_id=dot_id)

    def merge(self, other: CartState) -> CartState:
        """The union of both copies: commutative, associative and idempotent."""
        return CartState({**self.dots, **other.dots}, self.removed | other.removed)

    def compact(self) -> CartState:
        """This copy without its removed dots and their tombstones (the same lines).

        Safe only when no copy that has not seen those removals can be merged
        into this one later: it would bring the removed dots back.
        """
        if not self.removed:
            return self
        return CartState({i: d for i, d in self.dots.items() if i not in self.removed})

    # -- storing ------------------------------------------------------------------------

    def to_json(self) -> str:
        """Compact JSON for the cart row (dots sorted, so equal states store equal text)."""
        return json.dumps(
            {
                "d": [[d.id, d.sku, d.qty] for d in sorted(self.dots.values(), key=_key)],
                "r": sorted(self.removed),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> CartState:
        """Read what :meth:`to_json` wrote."""
        try:
            data = read_json(text, what="a stored cart")
            dots = {str(i): Dot(str(i), str(s), int(q)) for i, s, q in data["d"]}
            return cls(dots, frozenset(str(x) for x in data["r"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"a stored cart is unreadable: {exc}") from exc


def _key(dot: Dot) -> str:
    return dot.id
