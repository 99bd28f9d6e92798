"""An order moves only where the state machine allows."""

from __future__ import annotations

import pytest

from eppark.domain.order_states import CLOSED, PAID, PENDING, REFUNDED, may_move


@pytest.mark.parametrize(
    ("current", "target"), [(PENDING, PAID), (PENDING, CLOSED), (PAID, REFUNDED)]
)
def test_possible_moves(current: str, target: str) -> None:
    assert may_move(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (PENDING, REFUNDED),
        (PAID, PENDING),
        (PAID, CLOSED),
        (PAID, PAID),
        (CLOSED, PAID),
        (CLOSED, REFUNDED),
        (REFUNDED, PAID),
        (REFUNDED, PENDING),
        ("unknown", PAID),
    ],
)
def test_impossible_moves(current: str, target: str) -> None:
    assert not may_move(current, target)
