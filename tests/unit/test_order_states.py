"""An order moves only where the state machine allows."""

from __future__ import annotations

import pytest

from eppark.domain.order_states import CLOSED, CREATED, PAID, PAYING, REFUNDED, may_move


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (CREATED, PAYING),
        (CREATED, PAID),
        (CREATED, CLOSED),
        (PAYING, PAID),
        (PAYING, CLOSED),
        (PAID, REFUNDED),
        (CLOSED, PAID),  # the provider confirms money taken after the order closed
    ],
)
def test_possible_moves(current: str, target: str) -> None:
    assert may_move(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (CREATED, REFUNDED),
        (PAYING, REFUNDED),
        (PAYING, CREATED),
        (PAID, CREATED),
        (PAID, CLOSED),
        (PAID, PAID),
        (CLOSED, REFUNDED),
        (CLOSED, PAYING),
        (REFUNDED, PAID),
        (REFUNDED, CREATED),
        ("unknown", PAID),
    ],
)
def test_impossible_moves(current: str, target: str) -> None:
    assert not may_move(current, target)
