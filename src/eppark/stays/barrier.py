"""The barrier's opening channel: how an open reaches the gate.

An open goes through the channel the gate is configured with, or, set to
automatic, the one its plate camera's vendor offers: the camera's reply to
the push that read the car, the camera's own API, or the robot's relay.
``_open_now`` opens for the car just read (the hot path, in the read's
transaction); ``open_gate`` is how an open decided later (an agent, a
payment) reaches the barrier.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from eppark.devices import outbox
from eppark.devices.lpr import ADAPTERS
from eppark.devices.models import Camera, Channel, Robot
from eppark.devices.registry import CameraConfig, GateConfig
from eppark.lots.models import Gate, OpeningChannel

log = logging.getLogger(__name__)


class GateNotLinked(Exception):
    """The camera is not linked to a gate: its reads cannot be acted on."""


def channel(opening_channel: str, vendor: str | None, has_api: bool) -> str:
    """The channel an open takes: as configured, or chosen by the plate camera's vendor."""
    if opening_channel != OpeningChannel.AUTO:
        return str(opening_channel)
    if vendor is not None and vendor in ADAPTERS:
        if ADAPTERS[vendor].opens_by_reply:  # type: ignore[index]
            return Channel.CAMERA_REPLY
        if has_api:
            return Channel.CAMERA_API
    return OpeningChannel.ROBOT


def channel_for(gate: GateConfig, camera: CameraConfig) -> str:
    """The channel an open for the car ``camera`` just read takes at ``gate``."""
    return channel(gate.opening_channel, camera.vendor, camera.has_api)


def plate_camera(gate: Gate) -> Camera | None:
    """The gate's plate camera (the first LPR camera linked to it)."""
    return (
        gate.cameras.filter(vendor__in=list(ADAPTERS)).order_by("pk").first() if gate.pk else None
    )


def opening_channel(gate: Gate, camera: Camera | None) -> str:
    """The channel an open takes at ``gate``: as configured, or chosen by the camera's vendor."""
    return channel(
        str(gate.opening_channel),
        camera.vendor if camera is not None else None,
        bool(camera is not None and camera.api_url),
    )


def _open_now(
    cursor: Any,
    gate: GateConfig,
    camera: CameraConfig,
    visit_id: int,
    reason: str,
    now: datetime,
) -> bool:
    """Open for the car the camera just read; True when the camera's reply does it."""
    chosen = channel_for(gate, camera)
    if chosen == Channel.CAMERA_REPLY and ADAPTERS[camera.vendor].opens_by_reply:  # type: ignore[index]
        return True
    if chosen == Channel.CAMERA_API and camera.has_api:
        outbox.stage(
            cursor,
            channel=Channel.CAMERA_API,
            cmd="open",
            args={},
            now=now,
            ttl=outbox.camera_open_ttl(Channel.CAMERA_API),
            camera_id=camera.pk,
            visit_id=visit_id,
        )
    elif gate.robot_id is not None:
        outbox.stage(
            cursor,
            channel=Channel.MQTT,
            cmd="open",
            args={"reason": reason[:200]},
            now=now,
            ttl=outbox.open_ttl(),
            robot_id=gate.robot_id,
            robot_code=gate.robot_code,
            visit_id=visit_id,
        )
    else:
        log.warning("gate %s has no way to open: no robot and no camera channel", gate.pk)
    return False


def open_gate(gate: Gate, now: datetime, *, reason: str, by: Any = None, visit: Any = None) -> None:
    """Open ``gate`` for a decision made after the read (an agent, a payment), via its channel.

    The caller has already authorised the open and writes its own audit record;
    this stores the command in the outbox inside the caller's transaction.
    """
    camera = plate_camera(gate)
    chosen = opening_channel(gate, camera)
    extra: dict[str, Any] = {"visit": visit, "requested_by": by}
    if chosen in (Channel.CAMERA_REPLY, Channel.CAMERA_API) and camera is not None:
        outbox.open_by_camera(camera, chosen, now, **extra)
        return
    robot = _robot(gate)
    if robot is None:
        raise GateNotLinked(f"gate {gate.pk} has no robot and no camera to open it")
    outbox.open_by_robot(robot, now, reason=reason, **extra)


def _robot(gate: Gate) -> Robot | None:
    try:
        return gate.robot
    except Robot.DoesNotExist:
        return None
