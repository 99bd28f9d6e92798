"""Letting a waiting car through after the driver did what the robot asked.

A payment (an order paid by QR page, cashier or payment code) or an unplated
car's ticket changes what the gate would decide for the car waiting there; this
is the gate loop's own pass-through, run for that visit: the stay starts or
closes by the domain's rules (``eppark.domain.stays``), the robot says what the
scenario says (一路平安 / 欢迎回家 / 欢迎光临), and the barrier opens through the
gate's channel — all in one transaction with the outbox, like a live read.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction

from eppark.devices import outbox
from eppark.devices.models import Channel
from eppark.devices.registry import gate_config
from eppark.domain.decide import Direction
from eppark.domain.scenarios import SCENARIOS
from eppark.stays import stay_records
from eppark.stays.barrier import GateNotLinked, open_gate
from eppark.stays.gate_loop import _pass_through
from eppark.stays.models import GateVisit, Resolution
from eppark.stays.present import present_args

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


def let_through(visit: GateVisit, scenario_id: str, now: datetime, *, plate: str = "") -> bool:
    """Open for the car waiting at ``visit`` as ``scenario_id`` decides; False if it had gone.

    ``plate``: the car's plate when the visit's read had none (an unplated car's
    temporary plate). The caller holds the transaction open; nothing is sent
    before it commits.
    """
    scenario = SCENARIOS[scenario_id]
    with transaction.atomic():
        locked = GateVisit.objects.select_for_update().filter(pk=visit.pk, opened=False).first()
        if locked is None:
            return False
        gate = locked.gate
        config = gate_config(gate)
        car = plate or locked.plate
        with connection.cursor() as cursor:
            pass_id, monthly = stay_records.pass_for(cursor, gate.lot_id, car)
            stay = (
                stay_records.open_stay(cursor, gate.lot_id, car)
                if config.direction == Direction.EXIT
                else None
            )
            payments = stay_records.payments(cursor, stay.pk) if stay is not None else []
            stay_id = locked.stay_id
            if config.direction == Direction.EXIT or stay_id is None:
                stay_id = (
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
                    or stay_id
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
        locked.stay_id = stay_id
        if locked.resolved_at is None:
            locked.resolved_at, locked.resolution = now, Resolution.OPENED
        locked.save(update_fields=["opened", "stay", "resolved_at", "resolution"])
        try:
            open_gate(gate, now, reason=scenario_id, visit=locked)
        except GateNotLinked:
            return False
    return True
