"""The tariff engine: what a temp stay costs (``eppark fee``), and the rule's Chinese text.

Readings of the contract where it leaves room (``eppark fee``, contracts.md):

- Lengths are absolute (UTC) durations; the times in one input may carry
  different offsets. Window edges and calendar days are read in the rule's
  ``timezone`` on a wall clock that never runs backwards (see ``clock``).
- A unit is *started* when the stay reaches past its start: a stay ending
  exactly on a unit edge does not start the next unit, and a stay of exactly
  ``free_minutes`` is free.
- The ``first`` period starts where charging starts (after the free minutes
  when they are deducted) and is charged in full even if the stay is
  shorter. With segments it is cut at the next window edge, which also ends
  it: the following window starts its own units.
- 24 h cap windows count from *entry*, not from where charging starts; a
  unit belongs to the 24 h window / local calendar day in which it starts.
- A window's ``cap`` bounds one occurrence of the window, from its ``from``
  edge to its ``to`` edge (one night 20:00→08:00); a stretch starts where
  charging starts when that lies inside it. A single all-day window
  (``00:00``→``00:00``) thus has one stretch per day.
- A segment without its own ``unit`` uses the rule's ``unit``; ``to`` may be
  ``24:00``. Unknown keys are refused everywhere, ``null`` means absent for
  the optional objects ``first``, ``unit``, ``cap``, ``segments``, a
  segment's ``cap`` and ``payments``.
- The grace test compares the payments with the total of a stay ending at
  the latest ``paid_at`` (costs are never refunded: ``due`` ≥ 0). Without
  payments ``within_grace`` is false.
- Times are accepted in the years 1900-8999 and stays up to 100 years.
"""

from __future__ import annotations

from eppark.domain.tariff.command import describe_from_json, fee_from_json
from eppark.domain.tariff.describe import describe
from eppark.domain.tariff.fee import FeeResult, Payment, compute_fee
from eppark.domain.tariff.rule import Cap, Period, Segment, TariffRule, parse_rule

__all__ = [
    "Cap",
    "FeeResult",
    "Payment",
    "Period",
    "Segment",
    "TariffRule",
    "compute_fee",
    "describe",
    "describe_from_json",
    "fee_from_json",
    "parse_rule",
]
