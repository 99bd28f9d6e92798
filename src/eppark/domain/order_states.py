"""Where an order may go from where it stands (pure: no Django, no I/O).

created → paying (the driver is at a cashier, or a payment code is being
charged) → paid (the provider confirmed the money); created or paying →
closed (expired, abandoned, declined and reversed, or waived); paid →
refunded. A provider's confirmed payment is money taken: it settles a closed
order too (a payment that raced the expiry) — the settlement then flags the
order for review. refunded is final.
"""

from __future__ import annotations

CREATED = "created"
PAYING = "paying"
PAID = "paid"
CLOSED = "closed"
REFUNDED = "refunded"

TRANSITIONS: dict[str, frozenset[str]] = {
    CREATED: frozenset({PAYING, PAID, CLOSED}),
    PAYING: frozenset({PAID, CLOSED}),
    PAID: frozenset({REFUNDED}),
    CLOSED: frozenset({PAID}),
    REFUNDED: frozenset(),
}

OPEN = frozenset({CREATED, PAYING})
"""States in which an order still waits for its money."""


def may_move(current: str, target: str) -> bool:
    """Whether an order in state ``current`` may go to ``target``."""
    return target in TRANSITIONS.get(current, frozenset())
