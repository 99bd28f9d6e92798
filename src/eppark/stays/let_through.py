"""Letting a waiting car through after the driver did what the robot asked.

A payment (an order paid by QR page, cashier or payment code) or an unplated
car's ticket changes what the gate would decide for the car waiting there; this
is the gate loop's own pass-through, run for that visit: the stay starts or
closes by the domain's rules (``eppark.domain.stays``), the robot says what the
scenario says (一路平安 / 欢迎回家 / 欢迎光临), and the barrier opens through the
gate's channel — all in one transaction with the outbox, like a live read.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import connection, transaction

from eppark.devices import outbox
from eppark.devices.models import Channel
from eppark.devices.registry import gate_config
from eppark.domain.decide import Direction, EnteredAs
from eppark.domain.scenarios import SCENARIOS, Scenario
from eppark.domain.stays import OpenStay
from eppark.stays import stay_records
from eppark.stays.barrier import GateNotLinked, open_gate
from eppark.stays.gate_loop import _pass_through
from eppark.stays.models import EnteredAs as StayEntry
from eppark.stays.models import GateVisit, Resolution, Stay
from eppark.stays.present import present_args
from eppark.stays.stay_records import OpenStayRow

log = logging.getLogger(__name__)

STILL_WAITING = timedelta(minutes=30)
"""A car read at a gate this recently, with no newer car behind it, is taken to be waiting."""


def waiting_visit(
    lot_id: int, plate: str, direction: str, now: datetime, *, visit_id: int | None = None
) -> GateVisit | None:
    """The car ``plate`` waiting, unopened, at a ``direction`` gate of the lot (the gate's latest).

    ``visit_id``: the very visit (an unplated car, known by the QR code it scanned).
    """
    visits = GateVisit.objects.filter(
        lot_id=lot_id, gate__direction=direction, opened=False, arrived_at__gte=now - STILL_WAITING
    )
    visits = visits.filter(pk=visit_id) if visit_id is not None else visits.filter(plate=plate)
    for visit in visits.select_related("gate__lot").order_by("-arrived_at")[:3]:
        newer = GateVisit.objects.filter(gate_id=visit.gate_id, arrived_at__gt=visit.arrived_at)
        if not newer.exclude(pk=visit.pk).exists():
            return visit
    return None


class _NotHere(Exception):
    """The car is not let through after all: roll back what was written."""


def let_through(
    visit: GateVisit,
    scenario_id: str,
    now: datetime,
    *,
    plate: str = "",
    stay_id: int | None = None,
) -> bool:
    """Open for the car waiting at ``visit`` as ``scenario_id`` decides; False if it had gone.

    ``plate``: the car's plate when the visit's read had none (an unplated car's
    temporary plate). ``stay_id``: at an exit, the stay the car is leaving (a paid
    order's): if it has ended meanwhile nothing opens and no other stay of the
    plate is closed. The caller holds the transaction open; nothing is sent
    before it commits.

    Checked again under the visit's lock, so two callers open once: the visit is
    still unopened and no newer car has been read at its gate (``waiting_visit``'s
    rule). Nothing is written when the gate has no way to open.
    """
    scenario = SCENARIOS[scenario_id]
    try:
        with transaction.atomic():
            _open_for(visit, scenario, scenario_id, now, plate, stay_id)
    except _NotHere:
        return False
    except GateNotLinked as error:
        log.warning("visit %s not let through: %s", visit.pk, error)
        return False
    return True


def _open_for(
    visit: GateVisit,
    scenario: Scenario,
    scenario_id: str,
    now: datetime,
    plate: str,
    stay_id: int | None,
) -> None:
    locked = GateVisit.objects.select_for_update().filter(pk=visit.pk, opened=False).first()
    if locked is None:
        raise _NotHere
    newer = GateVisit.objects.filter(gate_id=locked.gate_id, arrived_at__gt=locked.arrived_at)
    if newer.exclude(pk=locked.pk).exists():
        raise _NotHere  # another car stands at the barrier now
    gate = locked.gate
    config = gate_config(gate)
    car = plate or locked.plate
    leaving = config.direction == Direction.EXIT
    stay = _leaving_stay(gate.lot_id, car, stay_id) if leaving else None
    if leaving and stay_id is not None and stay is None:
        raise _NotHere  # the order's stay has ended: the car is not that stay's any more
    with connection.cursor() as cursor:
        pass_id, monthly = stay_records.pass_for(cursor, gate.lot_id, car)
        stay = stay_records.as_charged(stay, monthly, config.policy, now)
        payments = stay_records.payments(cursor, stay.pk) if stay is not None else []
        passed = locked.stay_id
        if leaving or passed is None:
            passed = (
                _pass_through(
                    cursor,
                    config,
                    car,
                    locked.photo.name or "",
                    pass_id,
                    monthly,
                    stay,
                    payments,
                    now,
                )
                or passed
            )
        if config.robot_id is not None:
            outbox.stage(
                cursor,
                channel=Channel.MQTT,
                cmd="present",
                args=present_args(scenario.to_json(), locked.pk, gate.lot_id, car, pass_id),
                now=now,
                ttl=outbox.present_ttl(),
                robot_id=config.robot_id,
                robot_code=config.robot_code,
                visit_id=locked.pk,
            )
    locked.opened = True
    locked.stay_id = passed
    if locked.resolved_at is None:
        locked.resolved_at, locked.resolution = now, Resolution.OPENED
    locked.save(update_fields=["opened", "stay", "resolved_at", "resolution"])
    open_gate(gate, now, reason=scenario_id, visit=locked)


def _leaving_stay(lot_id: int, plate: str, stay_id: int | None) -> OpenStayRow | None:
    """The open stay the car leaves, locked (so it is closed once): ``stay_id``, else the plate's.

    Read after the lock: a stay closed meanwhile (by the gate, or by hand) is not found.
    """
    stays = Stay.objects.select_for_update().filter(lot_id=lot_id, exited_at__isnull=True)
    stays = stays.filter(pk=stay_id) if stay_id is not None else stays.filter(plate=plate)
    found = stays.order_by("-entered_at", "-pk").first()
    if found is None:
        return None
    entered_as = EnteredAs.PASS if found.entered_as == StayEntry.PASS else EnteredAs.TEMP
    return OpenStayRow(found.pk, OpenStay(entered_as, found.entered_at))
