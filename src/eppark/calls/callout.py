"""Outbound calls (manual 2.3.3): an agent's ``呼叫`` dials a robot's SIM through the call
centre; when the call centre reports ``outbound_connected`` the desk opens on that gate."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from eppark.calls.models import Call, CallCentre, CallDirection, CallState
from eppark.lots.models import Gate
from eppark.records.errors import Refused


def centre_for_callouts() -> CallCentre | None:
    """The call centre that places callouts: the first with a callout address."""
    return CallCentre.objects.exclude(callout_url="").order_by("pk").first()


def place(gate: Gate, user: Any, seat: str) -> Call:
    """Record the callout; the request to the call centre is sent after it commits."""
    robot = getattr(gate, "robot", None)
    if robot is None or not robot.phone:
        raise Refused(_("This gate's robot has no SIM number to call."))
    centre = centre_for_callouts()
    if centre is None:
        raise Refused(_("No call centre is set up for callouts."))
    with transaction.atomic():
        call = Call.objects.create(
            centre=centre,
            request_id=uuid.uuid4().hex,
            direction=CallDirection.OUTBOUND,
            state=CallState.DIALING,
            caller=seat,
            callee=robot.phone,
            seat=seat,
            agent=user,
            robot=robot,
            lot_id=gate.lot_id,
            gate=gate,
            started_at=timezone.now(),
        )
    return call
