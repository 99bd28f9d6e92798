"""Where an order may go from where it stands (pure: no Django, no I/O).

pending → paid (the payment arrived) or closed (abandoned, or waived);
paid → refunded; closed and refunded are final.
"""

from __future__ import annotations

PENDING = "pending"
PAID = "paid"
CLOSED = "closed"
REFUNDED = "refunded"

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({PAID, CLOSED}),
    PAID: frozenset({REFUNDED}),
    CLOSED: frozenset(),
    REFUNDED: frozenset(),
}


def may_move(current: str, target: str) -> bool:
    """Whether an order in state ``current`` may go to ``target``."""
    return target in TRANSITIONS.get(current, frozenset())
