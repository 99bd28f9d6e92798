"""Stay transitions: how a car's stay in a lot starts, ends, and what it owes.

One rule for every path that records stays. The live gate loop (a read decided
now, the barrier opened by the decision) and the offline backlog (a read the
camera acted on by itself while it was offline, uploaded later) both call
these functions, each with the read's own time, so they cannot drift apart:

- a car passing the entry gate starts a *pass* stay only when its pass is
  valid at that moment and its group has a free space (``enters_on_pass``,
  the rule behind entry.monthly_valid); any other plated car starts a *temp*
  stay, whatever opened the barrier; an unplated read starts none;
- a newer entry supersedes an older open stay of the same plate (its exit
  was missed); an entry older than the open stay starts nothing (an old read
  arriving late);
- a car passing the exit gate closes its open stay, unless the read is older
  than the stay's entry; the stay then records what it cost: nothing for a
  pass stay, for a temp stay what was paid plus what is still due by the
  tariff at that moment (inside the exit grace, what was paid is the fee).
  What is still due is what the stay owes after the exit;
- a pass stay whose pass has lapsed (expired more than the lot's payable
  days: exit.monthly_lapsed) is temp parking from the pass's end: the pass
  covered the stay up to ``valid_until``, the time after it is charged by the
  tariff like any temp stay (``lapsed_cover``).

Pure: no Django, no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from eppark.domain.decide import (
    EnteredAs,
    LotPolicy,
    PassStatus,
    PassView,
    enters_on_pass,
    pass_status,
)
from eppark.domain.tariff import Payment, compute_fee
from eppark.domain.tariff.command import parse_rule_cached


@dataclass(frozen=True, slots=True)
class OpenStay:
    """A stay whose car is still inside: how it entered and when.

    ``covered_until``: for a pass stay whose pass has lapsed, when the pass
    stopped covering it (the time after is charged as temp parking).
    """

    entered_as: EnteredAs
    entered_at: datetime
    covered_until: datetime | None = None

    @property
    def charged_from(self) -> datetime | None:
        """When the stay starts costing money; None: it costs nothing (a pass covers it)."""
        if self.entered_as is not EnteredAs.PASS:
            return self.entered_at
        if self.covered_until is None:
            return None
        return max(self.entered_at, self.covered_until)


@dataclass(frozen=True, slots=True)
class Charge:
    """What a stay has cost by a moment, in fen: the fee, what was paid, what is still due."""

    total: int
    paid: int
    due: int


NOTHING = Charge(0, 0, 0)


@dataclass(frozen=True, slots=True)
class StayEnd:
    """How a stay closes at the exit: when, what it cost and what was paid (fen)."""

    exited_at: datetime
    total: int
    paid: int

    @property
    def owed(self) -> int:
        """What the stay still owes after the exit."""
        return self.total - self.paid


def entered_as(
    plate: str | None, monthly_pass: PassView | None, lot: LotPolicy, at: datetime
) -> EnteredAs | None:
    """How a car that passes the entry gate at ``at`` is recorded; None: no plate, no stay.

    A pass stay needs the pass valid at ``at`` with a free space in its group;
    an expired, lapsed or not yet started pass, a full group or no pass make a
    temp stay. Whether the barrier opened on the decision or by the camera on
    its own does not change what the stay is.
    """
    if not plate or not plate.strip():
        return None
    return EnteredAs.PASS if enters_on_pass(monthly_pass, at, lot) else EnteredAs.TEMP


def starts_stay(open_stay: OpenStay | None, at: datetime) -> bool:
    """Whether a plated car entering at ``at`` starts a stay, given its open stay.

    An open stay that began at or before ``at`` is superseded (the car left
    unseen); one that began after ``at`` means the read is an old one arriving
    late, and it starts nothing.
    """
    return open_stay is None or open_stay.entered_at <= at


def supersedes(open_stay: OpenStay, at: datetime) -> bool:
    """Whether an entry at ``at`` ends ``open_stay`` (its car left unseen before)."""
    return open_stay.entered_at <= at


def lapsed_cover(
    stay: OpenStay, monthly_pass: PassView | None, lot: LotPolicy, at: datetime
) -> OpenStay:
    """``stay`` as charged at ``at``: a pass stay whose pass has lapsed is temp from its end.

    The manual's exit.monthly_lapsed (expired more than the payable days) asks
    for a temp order: the pass paid for the stay up to ``valid_until``; after
    that the car is parked like any visitor. A running, just-expired or
    renewable pass leaves the stay free (its own scenarios open or renew).
    """
    if (
        stay.entered_as is EnteredAs.PASS
        and monthly_pass is not None
        and pass_status(monthly_pass, at, lot) is PassStatus.LAPSED
    ):
        return replace(stay, covered_until=monthly_pass.valid_until)
    return stay


def charge(
    stay: OpenStay,
    tariff: Mapping[str, Any] | None,
    payments: Sequence[Payment],
    at: datetime,
) -> Charge:
    """What ``stay`` has cost at ``at``: nothing for a pass stay (up to a lapsed pass's end);
    a temp stay's fee.

    A temp stay's fee is the lot's tariff (the contract's RULE) from its entry
    to ``at``, less the payments made during the stay, with the exit grace.
    A lot with no tariff charges nothing.
    """
    start = stay.charged_from
    if start is None or start > at:
        return NOTHING
    counted = [p for p in payments if start <= p.paid_at <= at]
    if not tariff:
        return Charge(0, sum(p.amount for p in counted), 0)
    result = compute_fee(parse_rule_cached(tariff), start, max(at, start), counted)
    return Charge(result.total, result.paid, result.due)


def close(
    stay: OpenStay,
    tariff: Mapping[str, Any] | None,
    payments: Sequence[Payment],
    at: datetime,
) -> StayEnd | None:
    """The stay's end when its car passes the exit at ``at``; None: the read is older.

    The recorded cost is what was paid plus what is due at ``at`` (inside the
    exit grace, what was paid is the fee); ``owed`` is what is left unpaid.
    """
    if at < stay.entered_at:
        return None
    cost = charge(stay, tariff, payments, at)
    return StayEnd(at, cost.paid + cost.due, cost.paid)
