"""The command outbox: commands are stored with the change that caused them, then delivered.

``enqueue`` writes a ``Command`` inside the caller's transaction; once that
transaction commits, every registered listener is woken (the gateway's
dispatcher in the same process) and, on PostgreSQL, a ``NOTIFY`` wakes
dispatchers in other processes. Nothing here talks to a broker.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from eppark.devices.models import Camera, Channel, Command, CommandState, Robot

log = logging.getLogger(__name__)
NOTIFY_CHANNEL = "eppark_outbox"

_listeners: list[Callable[[], None]] = []


def add_listener(listener: Callable[[], None]) -> None:
    """Call ``listener`` (thread-safe, non-blocking) after each commit that enqueued commands."""
    _listeners.append(listener)


def remove_listener(listener: Callable[[], None]) -> None:
    """Stop calling ``listener``."""
    if listener in _listeners:
        _listeners.remove(listener)


def _wake() -> None:
    for listener in list(_listeners):
        try:
            listener()
        except Exception:  # a listener must never break the request that enqueued
            log.exception("outbox listener failed")
    if connection.vendor == "postgresql" and not _listeners:
        # no dispatcher in this process: wake the gateway processes
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")
        except Exception:  # the dispatcher also polls; a lost wake-up only delays
            log.warning("outbox NOTIFY failed", exc_info=True)


def present_ttl() -> timedelta:
    """How long a screen prompt stays worth showing."""
    return timedelta(seconds=getattr(settings, "EPPARK_PRESENT_TTL_S", 120))


def open_ttl() -> timedelta:
    """How long an open may still be carried out; later it is dropped, never run."""
    return timedelta(seconds=getattr(settings, "EPPARK_OPEN_TTL_S", 10))


def enqueue(
    *,
    channel: str,
    cmd: str,
    args: dict[str, Any],
    now: datetime,
    ttl: timedelta,
    robot: Robot | None = None,
    camera: Camera | None = None,
    **extra: Any,
) -> Command:
    """Store a command for delivery after the current transaction commits."""
    command = Command.objects.create(
        cmd_id=uuid.uuid4().hex,
        channel=channel,
        cmd=cmd,
        args=args,
        robot=robot,
        camera=camera,
        created_at=now,
        expires_at=now + ttl,
        next_attempt_at=now,
        **extra,
    )
    transaction.on_commit(_wake)
    return command


def present(robot: Robot, args: dict[str, Any], now: datetime, **extra: Any) -> Command:
    """Tell a robot what to say, show and light; older undelivered prompts are dropped."""
    Command.objects.filter(robot=robot, cmd="present", state=CommandState.PENDING).update(
        state=CommandState.EXPIRED, detail="superseded by a newer prompt"
    )
    return enqueue(
        channel=Channel.MQTT,
        cmd="present",
        args=args,
        now=now,
        ttl=present_ttl(),
        robot=robot,
        **extra,
    )


def open_by_robot(robot: Robot, now: datetime, reason: str, **extra: Any) -> Command:
    """Pulse the barrier through the robot's relay."""
    return enqueue(
        channel=Channel.MQTT,
        cmd="open",
        args={"reason": reason[:200]},
        now=now,
        ttl=open_ttl(),
        robot=robot,
        **extra,
    )


def open_by_camera(camera: Camera, channel: str, now: datetime, **extra: Any) -> Command:
    """Open through the plate camera: its next HTTP reply, or its HTTP API."""
    ttl = open_ttl() if channel == Channel.CAMERA_API else max(open_ttl(), timedelta(seconds=30))
    return enqueue(channel=channel, cmd="open", args={}, now=now, ttl=ttl, camera=camera, **extra)


def take_reply_open(camera: Camera, now: datetime) -> Command | None:
    """Claim a pending open that rides on this camera's reply (Vzenith comet, HXZX next push)."""
    waiting = Command.objects.filter(
        camera=camera, channel=Channel.CAMERA_REPLY, state=CommandState.PENDING
    )
    if not waiting.exists():  # the common case: one cheap query, no transaction
        return None
    with transaction.atomic():
        waiting.filter(expires_at__lt=now).update(
            state=CommandState.EXPIRED, detail="not collected by the camera in time"
        )
        command = (
            waiting.select_for_update().filter(expires_at__gte=now).order_by("created_at").first()
        )
        if command is None:
            return None
        command.state = CommandState.DONE
        command.sent_at = command.acked_at = now
        command.attempts += 1
        command.save(update_fields=["state", "sent_at", "acked_at", "attempts"])
        return command
