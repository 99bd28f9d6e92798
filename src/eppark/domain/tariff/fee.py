"""What a temp stay costs now: total, payments, the exit grace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from eppark.domain.errors import BadInput
from eppark.domain.tariff.clock import to_us
from eppark.domain.tariff.engine import stay_cost
from eppark.domain.tariff.rule import TariffRule

EARLIEST = to_us(datetime(1900, 1, 1, tzinfo=UTC))
LATEST = to_us(datetime(9000, 1, 1, tzinfo=UTC))
LONGEST_STAY = to_us(datetime(2070, 1, 1, tzinfo=UTC)) - to_us(datetime(1970, 1, 1, tzinfo=UTC))
"""Stays are refused beyond 100 years: no car parks that long, and the walk would crawl."""


@dataclass(frozen=True)
class Payment:
    """Money paid for the stay (``amount`` fen) at ``paid_at``.

    ``priced_at``: when the order it paid was priced (its amount is the stay's
    fee up to then). The exit grace runs from ``paid_at``; the payment settles
    the stay up to ``priced_at`` (default: ``paid_at``), so the minutes between
    pricing and paying never make a paid car owe again.
    """

    paid_at: datetime
    amount: int
    priced_at: datetime | None = None


@dataclass(frozen=True)
class FeeResult:
    """The answer of ``eppark fee``."""

    total: int
    paid: int
    due: int
    within_grace: bool
    text: str

    def as_json(self) -> dict[str, object]:
        """The contract's JSON object."""
        return {
            "total": self.total,
            "paid": self.paid,
            "due": self.due,
            "within_grace": self.within_grace,
            "text": self.text,
        }


def instant(moment: datetime, path: str) -> int:
    """An aware datetime in the supported range, as µs since the epoch."""
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise BadInput(path, "must be a time with a UTC offset")
    us = to_us(moment)
    if not EARLIEST <= us < LATEST:
        raise BadInput(path, f"{moment.isoformat()} is outside the years 1900-8999")
    return us


def compute_fee(
    rule: TariffRule, entered_at: datetime, at: datetime, payments: Sequence[Payment] = ()
) -> FeeResult:
    """The fee for the stay from ``entered_at`` up to ``at``, after ``payments``."""
    plan = rule.plan
    entered, end = instant(entered_at, "entered_at"), instant(at, "at")
    if end < entered:
        raise BadInput("at", f"{at.isoformat()} is before entered_at {entered_at.isoformat()}")
    if end - entered > LONGEST_STAY:
        raise BadInput("at", "the stay is longer than 100 years")
    total = stay_cost(plan, entered, end)
    paid, last, covered = 0, None, entered
    for k, payment in enumerate(payments):
        when = instant(payment.paid_at, f"payments[{k}].paid_at")
        if not entered <= when <= end:
            raise BadInput(
                f"payments[{k}].paid_at",
                f"{payment.paid_at.isoformat()} is outside the stay (entered_at … at)",
            )
        amount = payment.amount
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise BadInput(f"payments[{k}].amount", f"must be whole fen ≥ 0, not {amount!r}")
        paid += amount
        if last is None or when > last:
            last = when
            covered = when
            if payment.priced_at is not None:
                priced = instant(payment.priced_at, f"payments[{k}].priced_at")
                covered = max(entered, min(priced, when))
    if last is not None and end <= last + plan.grace and paid >= stay_cost(plan, entered, covered):
        return FeeResult(total, paid, 0, True, plan.text)
    return FeeResult(total, paid, max(0, total - paid), False, plan.text)
