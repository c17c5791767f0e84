"""Order status axes: every transition the tables allow, nothing else, terminal states stay put."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commercekit.commerce.orders import (
    FULFILMENT_TRANSITIONS,
    ORDER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    FulfilmentStatus,
    OrderStatus,
    PaymentStatus,
    order_number,
    transition,
)
from commercekit.errors import InvalidStateError, InvalidTransitionError

AXES = [
    (OrderStatus, ORDER_TRANSITIONS, OrderStatus.PLACED),
    (PaymentStatus, PAYMENT_TRANSITIONS, PaymentStatus.AUTHORIZED),
    (FulfilmentStatus, FULFILMENT_TRANSITIONS, FulfilmentStatus.UNFULFILLED),
]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(AXES), st.lists(st.integers(0, 10), max_size=30))
def test_random_walks_never_leave_the_tables(axis: tuple[object, ...], picks: list[int]) -> None:
    enum_type, table, state = axis
    members = list(enum_type)  # type: ignore[call-overload]
    for pick in picks:
        wanted = members[pick % len(members)]
        if wanted in table[state]:  # type: ignore[index]
            state = transition(state, wanted)  # type: ignore[type-var]
        else:
            with pytest.raises(InvalidTransitionError):
                transition(state, wanted)  # type: ignore[type-var]
        assert state in table  # type: ignore[operator]


def test_every_state_has_a_row_and_terminal_states_have_no_exit() -> None:
    for enum_type, table, _ in AXES:
        assert set(table) == set(enum_type)  # type: ignore[call-overload, arg-type]
    for terminal in (OrderStatus.CANCELLED, OrderStatus.COMPLETED, PaymentStatus.VOIDED):
        for to in type(terminal):
            with pytest.raises(InvalidStateError):
                transition(terminal, to)


def test_axes_do_not_mix_and_numbers_look_right() -> None:
    with pytest.raises(InvalidTransitionError):
        transition(OrderStatus.PLACED, PaymentStatus.PAID)  # type: ignore[type-var]
    numbers = {order_number() for _ in range(1000)}
    assert len(numbers) == 1000
    assert all(len(n) == 12 and n.startswith("CK-") and "I" not in n for n in numbers)
