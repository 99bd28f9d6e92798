"""The offline backlog: plate reads a camera acted on by itself while it was offline.

A camera that loses the server keeps opening its barrier by its own lists and
uploads those reads later, flagged offline. Nothing is decided or commanded
for them (the car is long gone), but the stays must end up as the live path
would have recorded them: the same rule (``eppark.domain.stays``) over the
same statements (``stay_records``), at the read's own time rather than the
upload's. So a lapsed pass holder who drove in while the camera was offline
starts a temp stay, and leaving later owes the tariff's fee.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eppark.devices.lpr.events import PlateRead
from eppark.devices.registry import GateConfig
from eppark.domain import stays as stay_rules
from eppark.domain.decide import Direction
from eppark.stays import stay_records


def record(cursor: Any, gate: GateConfig, read: PlateRead, photo: str, now: datetime) -> None:
    """Record the stay change of a backlog ``read`` at ``gate`` (received at ``now``)."""
    plate = read.plate or ""
    if not plate:
        return  # an unplated car starts no stay, as on the live path
    # the read's own time; a camera clock ahead of ours cannot date a stay in the future
    at = min(read.read_at, now) if read.read_at is not None else now
    current = stay_records.open_stay(cursor, gate.lot_id, plate)
    if gate.direction == Direction.ENTRY:
        if not stay_rules.starts_stay(current.stay if current else None, at):
            return
        pass_id, monthly = stay_records.pass_for(cursor, gate.lot_id, plate)
        entered_as = stay_rules.entered_as(plate, monthly, gate.policy, at)
        if entered_as is None:
            return
        stay_records.start(
            cursor,
            lot_id=gate.lot_id,
            gate_id=gate.pk,
            plate=plate,
            entered_as=entered_as,
            at=at,
            photo=photo,
            pass_id=pass_id,
        )
        return
    _, monthly = stay_records.pass_for(cursor, gate.lot_id, plate)
    current = stay_records.as_charged(current, monthly, gate.policy, at)
    if current is None:
        return
    paid = (
        stay_records.payments(cursor, current.pk) if current.stay.charged_from is not None else []
    )
    end = stay_rules.close(current.stay, gate.tariff, paid, at)
    if end is not None:
        stay_records.finish(cursor, current.pk, end, gate_id=gate.pk, photo=photo)
