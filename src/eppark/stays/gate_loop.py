"""The gate's decision on a plate read: a visit, a stay change and commands.

For a read taken in (``eppark.stays.reads``), ``_decide_and_act`` first checks
for a repeat (the same plate at the same gate within the dedup window is one
visit), then finds the pass and its group, the open stay and what it owes
(``eppark.domain.stays``), runs the decision engine, and, on the read's
cursor and inside its transaction, records the gate visit, starts or closes
the stay, and stores the robot's commands in the outbox: what to show
(``eppark.stays.present``) and, when the decision opens, the open through
the gate's channel (``eppark.stays.barrier``).

This is the hot path: a few plain statements on one cursor (``eppark.rawsql``),
not the ORM.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from eppark.devices import outbox
from eppark.devices.lpr.events import PlateRead as Read
from eppark.devices.models import Channel
from eppark.devices.registry import CameraConfig, GateConfig
from eppark.domain import stays as stay_rules
from eppark.domain.decide import (
    Direction,
    PassView,
    Situation,
    StayView,
    decide,
)
from eppark.domain.scenarios import Scenario
from eppark.domain.tariff import Payment
from eppark.rawsql import js, ts
from eppark.stays import stay_records
from eppark.stays.barrier import _open_now, channel_for
from eppark.stays.models import Resolution
from eppark.stays.present import present_args
from eppark.stays.stay_records import OpenStayRow


@dataclass(frozen=True)
class ReadOutcome:
    """What to answer the camera: open through the reply or not; the visit it belongs to."""

    open: bool
    visit_id: int | None
    duplicate: bool = False


def dedup_window() -> timedelta:
    """The same plate at the same gate within this window is one visit (camera re-sends)."""
    return timedelta(seconds=getattr(settings, "EPPARK_READ_DEDUP_SECONDS", 10))


_REPEAT = (
    "SELECT id, opened FROM stays_gatevisit WHERE gate_id = %s AND plate = %s"
    " AND arrived_at >= %s ORDER BY arrived_at DESC, id DESC LIMIT 1"
)


def _decide_and_act(
    cursor: Any, gate: GateConfig, camera: CameraConfig, read: Read, photo: str, now: datetime
) -> ReadOutcome:
    plate = read.plate or ""
    if plate:
        cursor.execute(_REPEAT, [gate.pk, plate, ts(now - dedup_window())])
        repeat = cursor.fetchone()
        if repeat is not None:
            opens = bool(repeat[1]) and channel_for(gate, camera) == Channel.CAMERA_REPLY
            return ReadOutcome(open=opens, visit_id=repeat[0], duplicate=True)
    seen = assess(cursor, gate, plate, now)
    pass_id, monthly, exit_stay, payments, scenario = (
        seen.pass_id,
        seen.monthly,
        seen.exit_stay,
        seen.payments,
        seen.scenario,
    )
    decision = scenario.to_json()  # the contract's decision object: recorded, then presented
    cursor.execute(
        "UPDATE stays_gatevisit SET resolved_at = %s, resolution = %s"
        " WHERE gate_id = %s AND resolved_at IS NULL",
        [ts(now), Resolution.SUPERSEDED, gate.pk],
    )
    stay_id = exit_stay.pk if exit_stay else None
    if scenario.opens:
        stay_id = _pass_through(
            cursor, gate, plate, photo, pass_id, monthly, exit_stay, payments, now
        )
    visit_id = _insert_visit(cursor, gate, plate, photo, scenario, decision, stay_id, now)
    if gate.robot_id is not None:
        outbox.stage(
            cursor,
            channel=Channel.MQTT,
            cmd="present",
            args=present_args(decision, visit_id, gate.lot_id, plate, pass_id),
            now=now,
            ttl=outbox.present_ttl(),
            robot_id=gate.robot_id,
            robot_code=gate.robot_code,
            visit_id=visit_id,
        )
    reply_opens = False
    if scenario.opens:
        reply_opens = _open_now(cursor, gate, camera, visit_id, scenario.id, now)
    return ReadOutcome(open=reply_opens, visit_id=visit_id)


@dataclass(frozen=True)
class Assessment:
    """What the gate knows of a plate now: its pass, its open stay and payments, the decision."""

    pass_id: int | None
    monthly: PassView | None
    exit_stay: OpenStayRow | None
    payments: list[Payment]
    situation: Situation
    scenario: Scenario


def assess(cursor: Any, gate: GateConfig, plate: str, now: datetime) -> Assessment:
    """The decision for ``plate`` at ``gate`` now, with what it was made from; changes nothing.

    The gate loop acts on it; the agent desk shows it for a plate an agent typed.
    """
    pass_id, monthly = stay_records.pass_for(cursor, gate.lot_id, plate) if plate else (None, None)
    leaving = plate and gate.direction == Direction.EXIT
    exit_stay = (
        stay_records.as_charged(
            stay_records.open_stay(cursor, gate.lot_id, plate), monthly, gate.policy, now
        )
        if leaving
        else None
    )
    payments = (
        stay_records.payments(cursor, exit_stay.pk)
        if exit_stay is not None and exit_stay.stay.charged_from is not None
        else []
    )
    situation = Situation(
        now=now,
        direction=gate.direction,
        plate=plate or None,
        lot=gate.policy,
        monthly_pass=monthly,
        stay=_stay_view(gate.tariff, exit_stay, payments, now) if exit_stay else None,
    )
    return Assessment(pass_id, monthly, exit_stay, payments, situation, decide(situation))


def _stay_view(
    tariff: dict[str, Any], stay: OpenStayRow, payments: list[Payment], now: datetime
) -> StayView:
    return StayView(
        stay.entered_as, stay_rules.charge(stay.stay, tariff, payments, now).due, stay.entered_at
    )


_INSERT_VISIT = (
    "INSERT INTO stays_gatevisit (gate_id, lot_id, plate, arrived_at, photo, scenario,"
    " decision, expected_action, opened, resolved_at, resolution, stay_id)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
)


def _pass_through(
    cursor: Any,
    gate: GateConfig,
    plate: str,
    photo: str,
    pass_id: int | None,
    monthly: PassView | None,
    stay: OpenStayRow | None,
    payments: list[Payment],
    now: datetime,
) -> int | None:
    """The car passes the barrier: an entry starts a stay, an exit closes it; the stay's id.

    What the stay is and what it owes are the domain's (``eppark.domain.stays``),
    the same rule the offline backlog follows.
    """
    if gate.direction == Direction.ENTRY:
        entered_as = stay_rules.entered_as(plate, monthly, gate.policy, now)
        if entered_as is None:
            return None
        return stay_records.start(
            cursor,
            lot_id=gate.lot_id,
            gate_id=gate.pk,
            plate=plate,
            entered_as=entered_as,
            at=now,
            photo=photo,
            pass_id=pass_id,
        )
    if stay is None:
        return None
    end = stay_rules.close(stay.stay, gate.tariff, payments, now)
    if end is not None:
        stay_records.finish(cursor, stay.pk, end, gate_id=gate.pk, photo=photo)
    return stay.pk


def _insert_visit(
    cursor: Any,
    gate: GateConfig,
    plate: str,
    photo: str,
    scenario: Scenario,
    decision: dict[str, Any],
    stay_id: int | None,
    now: datetime,
) -> int:
    cursor.execute(
        _INSERT_VISIT,
        [
            gate.pk,
            gate.lot_id,
            plate,
            ts(now),
            photo,
            scenario.id,
            js(decision),
            decision["expected_action"] or "",
            scenario.opens,
            ts(now) if scenario.opens else None,
            Resolution.OPENED if scenario.opens else "",
            stay_id,
        ],
    )
    return int(cursor.fetchone()[0])
