"""How ``RedisCartStore`` keeps a cart under its key: compact JSON.

``w`` is the random id of the write that stored it (a lost reply to a create is
told from a cart made by someone else by it, or by ``n``); ``n`` is the cart's
stamp, drawn when it was made and kept by every write (a cart made again under
an id whose cart Redis dropped has another). A cart stored before stamps were
kept reads with the stamp ``""``.
"""

from __future__ import annotations

import json

from commercekit._json import read_json
from commercekit.errors import InvalidInputError, NotFoundError

from ._crdt import CartState
from ._store import CartRecord, CartStatus

__all__ = ["decode", "encode"]


def encode(record: CartRecord, stamp: str) -> str:
    """The cart as JSON, with *stamp*, the id of the write that stores it."""
    return json.dumps(
        {
            "cu": record.customer_id,
            "cur": record.currency,
            "st": record.state.to_json(),
            "vo": record.voucher,
            "v": record.version,
            "s": record.status.value,
            "ca": record.created_at,
            "ua": record.updated_at,
            "w": stamp,
            "n": record.stamp,
        },
        separators=(",", ":"),
    )


def decode(cart_id: str, raw: bytes | str | None) -> tuple[CartRecord, str]:
    """(the record, its write stamp); NotFoundError when the key is gone."""
    if raw is None:
        raise NotFoundError(f"no cart {cart_id!r} (never made, or expired and dropped)")
    try:
        data = read_json(raw, what=f"the stored cart {cart_id!r}")
        record = CartRecord(
            id=cart_id,
            customer_id=data["cu"],
            currency=str(data["cur"]),
            state=CartState.from_json(data["st"]),
            voucher=data["vo"],
            version=int(data["v"]),
            status=CartStatus(data["s"]),
            created_at=float(data["ca"]),
            updated_at=float(data["ua"]),
            stamp=str(data.get("n") or ""),
        )
        return record, str(data["w"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"the stored cart {cart_id!r} is unreadable: {exc}") from exc
