"""Order pages: their cursors are the repository's keyset cursors, and earlier ones still read."""

from __future__ import annotations

import base64

import pytest

from commercekit.errors import InvalidInputError
from commercekit.repository import Database, decode_cursor, encode_cursor
from tests.commerce._shop import GOOD, cart_with, make_shop
from tests.commerce.conftest import FakeClock


def test_an_order_page_cursor_is_the_repositorys_and_the_earlier_form_still_reads(
    db: Database, clock: FakeClock
) -> None:
    shop, _, _ = make_shop(db, clock=clock)
    ids, times = [], []
    for _ in range(3):
        clock.advance(1)
        times.append(clock.now)
        order = shop.checkout.place(cart_with(shop, {"MUG": 1}), GOOD, region="DE").order
        assert order is not None
        ids.append(order.id)
    first = shop.orders.recent(1)
    assert first.next_after is not None
    at, oid = decode_cursor(first.next_after)
    assert (at, oid) == (times[2], ids[2])
    rest = [o.id for o in shop.orders.recent(5, after=first.next_after).orders]
    assert rest == [ids[1], ids[0]]
    earlier = f"{at!r}/{oid}"  # the "<created_at>/<order id>" cursors handed out before
    assert [o.id for o in shop.orders.recent(5, after=earlier).orders] == rest
    whole = encode_cursor([int(times[2]), oid])  # a whole number of seconds reads too
    assert [o.id for o in shop.orders.recent(5, after=whole).orders] == rest
    deep = base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=")  # a crafted page link
    for bad in (
        deep,
        encode_cursor(["1.0", oid]),
        encode_cursor([1.0]),
        encode_cursor([1.0, oid, "x"]),
        encode_cursor([True, oid]),
        encode_cursor([float("inf"), oid]),
        encode_cursor([float("nan"), oid]),
        encode_cursor([1.0, 7]),
        encode_cursor([1.0, "a\nb"]),
        encode_cursor([1.0, ""]),
    ):
        with pytest.raises(InvalidInputError):
            shop.orders.recent(after=bad)
        with pytest.raises(InvalidInputError):
            shop.orders.for_customer("c-7", after=bad)
