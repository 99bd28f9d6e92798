"""The stay records' plain SQL, shared by the live gate loop and the offline backlog.

What a stay decision needs (the plate's pass, its open stay, the payments made)
is read, and the decision (``eppark.domain.stays``) written, with a few plain
statements on the caller's cursor: the live path is the hot path (see
``reads``, ``gate_loop``), and the offline backlog uses the very same statements so the
two record stays alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eppark.domain.decide import EnteredAs, LotPolicy, PassView
from eppark.domain.stays import OpenStay, StayEnd, lapsed_cover
from eppark.domain.tariff import Payment
from eppark.orders.models import OrderState
from eppark.rawsql import aware, ts
from eppark.stays.models import StayState

_PASS = (
    "SELECT mp.id, mp.valid_from, mp.valid_until, mp.spaces,"
    " (SELECT COUNT(DISTINCT s.plate) FROM passes_passplate o JOIN stays_stay s"
    "   ON s.lot_id = o.lot_id AND s.plate = o.plate AND s.exited_at IS NULL"
    "   WHERE o.monthly_pass_id = mp.id AND o.plate <> %s)"
    " FROM passes_passplate pp JOIN passes_monthlypass mp ON mp.id = pp.monthly_pass_id"
    " WHERE pp.lot_id = %s AND pp.plate = %s"
)
_OPEN_STAY = (
    "SELECT id, entered_as, entered_at FROM stays_stay WHERE lot_id = %s AND plate = %s"
    " AND exited_at IS NULL ORDER BY entered_at DESC, id DESC LIMIT 1"
)
_PAYMENTS = (
    "SELECT paid_at, amount, priced_at FROM orders_order WHERE stay_id = %s AND state = %s"
    " AND paid_at IS NOT NULL"
)
_SUPERSEDE = (
    "UPDATE stays_stay SET exited_at = %s, state = %s, close_note = %s"
    " WHERE lot_id = %s AND plate = %s AND exited_at IS NULL AND entered_at <= %s"
)
SUPERSEDED_NOTE = "superseded: the car entered again without a recorded exit"
_INSERT_STAY = (
    "INSERT INTO stays_stay (lot_id, plate, entered_as, state, entered_at, entry_gate_id,"
    " entry_photo, exited_at, exit_gate_id, exit_photo, total, paid, close_note,"
    " closed_by_id, monthly_pass_id)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, NULL, '', 0, 0, '', NULL, %s) RETURNING id"
)
_LEAVE = (
    "UPDATE stays_stay SET exited_at = %s, exit_gate_id = %s, state = %s, exit_photo = %s,"
    " total = %s, paid = %s WHERE id = %s AND exited_at IS NULL"
)


@dataclass(frozen=True, slots=True)
class OpenStayRow:
    """An open stay as recorded: its id and the stay the domain sees."""

    pk: int
    stay: OpenStay

    @property
    def entered_as(self) -> EnteredAs:
        """How its car entered."""
        return self.stay.entered_as

    @property
    def entered_at(self) -> datetime:
        """When its car entered."""
        return self.stay.entered_at


def pass_for(cursor: Any, lot_id: int, plate: str) -> tuple[int | None, PassView | None]:
    """The plate's pass in the lot, with its group's *other* cars inside now."""
    cursor.execute(_PASS, [plate, lot_id, plate])
    row = cursor.fetchone()
    if row is None:
        return None, None
    return row[0], PassView(aware(row[1]), aware(row[2]), int(row[3]), int(row[4]))


def open_stay(cursor: Any, lot_id: int, plate: str) -> OpenStayRow | None:
    """The plate's latest open stay in the lot."""
    cursor.execute(_OPEN_STAY, [lot_id, plate])
    row = cursor.fetchone()
    if row is None:
        return None
    entered_as = EnteredAs.PASS if row[1] == EnteredAs.PASS else EnteredAs.TEMP
    return OpenStayRow(row[0], OpenStay(entered_as, aware(row[2])))


def as_charged(
    row: OpenStayRow | None, monthly: PassView | None, lot: LotPolicy, at: datetime
) -> OpenStayRow | None:
    """The open stay as it is charged at ``at`` (a lapsed pass's stay is temp from its end)."""
    if row is None:
        return None
    return OpenStayRow(row.pk, lapsed_cover(row.stay, monthly, lot, at))


def payments(cursor: Any, stay_id: int) -> list[Payment]:
    """The paid orders of a stay."""
    cursor.execute(_PAYMENTS, [stay_id, OrderState.PAID])
    return [
        Payment(aware(paid_at), int(amount), aware(priced_at) if priced_at else None)
        for paid_at, amount, priced_at in cursor.fetchall()
    ]


def start(
    cursor: Any,
    *,
    lot_id: int,
    gate_id: int,
    plate: str,
    entered_as: EnteredAs,
    at: datetime,
    photo: str,
    pass_id: int | None,
) -> int:
    """Start a stay entered at ``at``, superseding the plate's older open stays; its id."""
    cursor.execute(
        _SUPERSEDE,
        [ts(at), StayState.CLOSED_BY_HAND, SUPERSEDED_NOTE, lot_id, plate, ts(at)],
    )
    cursor.execute(
        _INSERT_STAY,
        [lot_id, plate, entered_as, StayState.INSIDE, ts(at), gate_id, photo, pass_id],
    )
    return int(cursor.fetchone()[0])


def finish(cursor: Any, stay_id: int, end: StayEnd, *, gate_id: int, photo: str) -> None:
    """Record that the stay's car left through ``gate_id``, with what the stay cost."""
    cursor.execute(
        _LEAVE,
        [ts(end.exited_at), gate_id, StayState.LEFT, photo, end.total, end.paid, stay_id],
    )
