"""Call-centre events turned into calls, and calls routed to the agent of their seat.

From the robot's SIM number (``robot.phone``) a call knows the robot, its lot and
gate, and the car waiting there; the seat in the event names the agent whose desk
pops. A call is locked to the agent who answers it. A call for a lot the seat's
agent does not serve is recorded but never shown on that agent's desk.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from eppark.accounts.scoping import may_act_on_lot
from eppark.calls.cti.events import CtiEvent, EventKind
from eppark.calls.models import Call, CallCentre, CallDirection, CallEvent, CallState
from eppark.console import push
from eppark.console.models import Seat
from eppark.devices.models import Robot
from eppark.stays.models import GateVisit

RECENT_VISIT = timedelta(minutes=10)
"""A call finds the car at its gate: the one waiting, else the last one seen this long ago."""


def robot_of(number: str) -> Robot | None:
    """The robot whose SIM has this number."""
    if not number:
        return None
    return Robot.objects.filter(phone=number).select_related("lot", "gate").order_by("pk").first()


def agent_of(seat: str) -> Any:
    """The agent bound to a seat, if any."""
    if not seat:
        return None
    bound = Seat.objects.filter(number=seat).select_related("agent__staff").first()
    return bound.agent if bound is not None and bound.agent is not None else None


def car_at(gate_id: int, now: datetime) -> GateVisit | None:
    """The car at the gate: the one waiting, else the latest seen in the last minutes."""
    visits = GateVisit.objects.filter(gate_id=gate_id, arrived_at__gte=now - RECENT_VISIT)
    waiting = visits.filter(resolved_at__isnull=True).order_by("-arrived_at").first()
    return waiting or visits.order_by("-arrived_at").first()


def receive(centre: CallCentre, event: CtiEvent, payload: dict[str, Any], now: datetime) -> Call:
    """Apply one event (a repeated one changes nothing) and push the call to its desk."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = CallEvent.objects.create(
                    centre=centre,
                    provider_call_id=event.call_id,
                    event=str(event.event),
                    payload=payload,
                    at=event.at,
                    received_at=now,
                )
        except IntegrityError:
            existing = Call.objects.filter(centre=centre, call_id=event.call_id).first()
            if existing is not None:
                return existing
            raise
        call = _apply(centre, event, now)
        record.call = call
        record.save(update_fields=["call"])
        announce(call)
    return call


def _apply(centre: CallCentre, event: CtiEvent, now: datetime) -> Call:
    if event.event is EventKind.OUTBOUND_CONNECTED:
        return _connected(centre, event, now)
    call = Call.objects.select_for_update().filter(centre=centre, call_id=event.call_id).first()
    if call is None:
        call = _new_inbound(centre, event, now)
        if event.event is EventKind.HANGUP:  # a call we never saw ring: on record, on no desk
            call.agent = None
    if event.event is EventKind.ANSWERED and call.state in (CallState.RINGING, CallState.DIALING):
        call.state, call.answered_at = CallState.ANSWERED, event.at
        answering = agent_of(event.seat) if event.seat else None
        if answering is not None and _serves(answering, call):
            call.agent, call.seat = answering, event.seat  # locked to who answered
    elif event.event is EventKind.HANGUP and call.state != CallState.ENDED:
        call.state, call.ended_at = CallState.ENDED, event.at
    call.save()
    return call


def _serves(agent: Any, call: Call) -> bool:
    return call.lot_id is None or may_act_on_lot(agent, call.lot_id)


def _new_inbound(centre: CallCentre, event: CtiEvent, now: datetime) -> Call:
    robot = robot_of(event.caller)
    call = Call(
        centre=centre,
        call_id=event.call_id,
        direction=CallDirection.INBOUND,
        state=CallState.RINGING,
        caller=event.caller,
        callee=event.callee,
        seat=event.seat,
        started_at=event.at,
    )
    _place(call, robot, now)
    agent = agent_of(event.seat)
    if agent is not None and _serves(agent, call):
        call.agent = agent
    call.save()
    return call


def _place(call: Call, robot: Robot | None, now: datetime) -> None:
    """Tie the call to the robot's lot and gate and the car there."""
    if robot is None:
        return
    call.robot, call.lot_id, call.gate_id = robot, robot.lot_id, robot.gate_id
    if robot.gate_id is not None:
        visit = car_at(robot.gate_id, now)
        if visit is not None:
            call.visit, call.plate = visit, visit.plate


def _connected(centre: CallCentre, event: CtiEvent, now: datetime) -> Call:
    """An agent's callout connected: the desk opens on that gate."""
    pending = Call.objects.select_for_update().filter(
        centre=centre, direction=CallDirection.OUTBOUND, state=CallState.DIALING
    )
    call = None
    if event.request_id:
        call = pending.filter(request_id=event.request_id).first()
    if call is None:
        call = pending.filter(callee=event.callee).order_by("-started_at").first()
    if call is None:  # a callout made from the call centre's own softphone
        call = Call(
            centre=centre,
            direction=CallDirection.OUTBOUND,
            caller=event.caller,
            callee=event.callee,
            seat=event.seat,
            started_at=event.at,
        )
        _place(call, robot_of(event.callee), now)
        agent = agent_of(event.seat)
        if agent is not None and _serves(agent, call):
            call.agent = agent
    elif call.gate_id is not None:
        visit = car_at(call.gate_id, now)
        if visit is not None:
            call.visit, call.plate = visit, visit.plate
    call.call_id = event.call_id
    call.state, call.answered_at = CallState.ANSWERED, event.at
    call.save()
    return call


def announce(call: Call) -> None:
    """Push the call to its agent's desk and to the calls board of its lot (on commit)."""
    message = {"kind": "call", "call": call.pk}
    if call.agent_id is not None:
        push.publish(push.agent_group(call.agent_id), message)
    if call.lot_id is not None:
        push.publish(push.lot_group(call.lot_id), message)
