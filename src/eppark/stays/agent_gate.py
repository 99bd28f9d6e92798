"""The gate's side of an agent's action: a new visit at the gate, what the robot shows,
and (when the action opens) the stay's start or end and the barrier.

The agent desk (``eppark.console.cases``) decides *what* to do by the domain's rules
(``eppark.domain.desk``); this records it the way the gate loop records a read: the
car's standing is the gate loop's own ``assess``, the stay starts or closes by the
domain's ``_pass_through``, the robot's commands go through the outbox in the
caller's transaction, and the visit supersedes the one the agent worked on (so QR
codes, payments and payment codes at the robot all follow the agent's case).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from eppark.devices import outbox
from eppark.devices.models import Channel
from eppark.devices.registry import gate_config
from eppark.domain.decide import PassStatus, enters_on_pass, pass_status
from eppark.domain.desk import Screen
from eppark.lots.models import Gate
from eppark.rawsql import ts
from eppark.stays.barrier import open_gate
from eppark.stays.gate_loop import Assessment, _pass_through, assess
from eppark.stays.models import GateVisit, Resolution
from eppark.stays.present import present_args


@dataclass(frozen=True)
class Standing:
    """The car at the gate as the agent sees it: the gate loop's assessment of its plate."""

    assessment: Assessment
    pass_status: PassStatus
    on_pass: bool  # an entry would greet it as a pass holder (valid, or expired ≤ grace)


def standing(gate: Gate, plate: str, now: datetime) -> Standing:
    """What the gate would decide for ``plate`` now; changes nothing."""
    config = gate_config(gate)
    with connection.cursor() as cursor:
        seen = assess(cursor, config, plate, now)
    status = pass_status(seen.monthly, now, config.policy)
    on_pass = enters_on_pass(seen.monthly, now, config.policy) or (
        status is PassStatus.EXPIRED_GRACE
    )
    return Standing(seen, status, on_pass)


def act(
    gate: Gate,
    *,
    plate: str,
    photo: str,
    scenario: str,
    screen: Screen | None,
    opens: bool,
    resolution: str,
    now: datetime,
    by: Any,
    expected_action: str = "",
    stay_id: int | None = None,
) -> GateVisit:
    """Record the agent's step at ``gate`` as a new visit; show ``screen``; open if ``opens``.

    The caller holds the transaction; nothing reaches the robot before it commits.
    """
    config = gate_config(gate)
    with connection.cursor() as cursor:
        seen = assess(cursor, config, plate, now)
        cursor.execute(
            "UPDATE stays_gatevisit SET resolved_at = %s, resolution = %s"
            " WHERE gate_id = %s AND resolved_at IS NULL",
            [ts(now), Resolution.AGENT, gate.pk],
        )
        passed = stay_id if stay_id is not None else (seen.exit_stay.pk if seen.exit_stay else None)
        if opens and plate:
            passed = (
                _pass_through(
                    cursor,
                    config,
                    plate,
                    photo,
                    seen.pass_id,
                    seen.monthly,
                    seen.exit_stay,
                    seen.payments,
                    now,
                )
                or passed
            )
    decision: dict[str, Any] = {
        "scenario": scenario,
        "open": opens,
        "voice": screen.voice if screen is not None else None,
        "display": screen.display.to_json() if screen is not None else None,
        "light": str(screen.light) if screen is not None else None,
        "expected_action": expected_action or None,
    }
    visit = GateVisit.objects.create(
        gate=gate,
        lot_id=gate.lot_id,
        plate=plate,
        arrived_at=now,
        photo=photo,
        scenario=scenario,
        decision=decision,
        expected_action=expected_action,
        opened=opens,
        resolved_at=now if opens else None,
        resolution=resolution if opens else "",
        stay_id=passed,
    )
    if screen is not None and config.robot_id is not None:
        with connection.cursor() as cursor:
            outbox.stage(
                cursor,
                channel=Channel.MQTT,
                cmd="present",
                args=present_args(decision, visit.pk, gate.lot_id, plate, seen.pass_id),
                now=now,
                ttl=outbox.present_ttl(),
                robot_id=config.robot_id,
                robot_code=config.robot_code,
                visit_id=visit.pk,
            )
    if opens:
        open_gate(gate, now, reason=f"agent:{scenario}", by=by, visit=visit)
    return visit
