"""The command outbox: commands are stored with the change that caused them, then delivered.

``stage`` writes a command inside the caller's transaction (one INSERT, the
gate loop's hot path); ``enqueue`` and its wrappers do the same for callers
that want the ``Command`` back. Once the transaction commits, every registered
listener (the gateway's dispatcher in the same process) is handed the
commands ready to publish, so a robot hears of a decision without the
gateway reading the database again. With no listener in this process, a
PostgreSQL ``NOTIFY`` (delivered at commit) wakes the gateway processes.
Nothing here talks to a broker; the database row is the durable truth, and
the gateway's poll delivers whatever a hand-off missed.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from eppark.devices.models import Camera, Channel, Command, CommandState, Robot
from eppark.gateway import protocol
from eppark.rawsql import aware, js, literal, ts

log = logging.getLogger(__name__)
NOTIFY_CHANNEL = "eppark_outbox"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One MQTT command ready to publish: its row, topic, wire payload and expiry."""

    pk: int
    topic: str
    payload: str
    expires_at: datetime
    present_to: str | None = None  # the robot, for a ``present`` (only the newest matters)


Listener = Callable[[Sequence[Outgoing]], None]
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    """Hand ``listener`` (thread-safe, non-blocking) the MQTT commands of each commit."""
    _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    """Stop calling ``listener``."""
    if listener in _listeners:
        _listeners.remove(listener)


def _hand_off(batch: Sequence[Outgoing]) -> None:
    for listener in list(_listeners):
        try:
            listener(batch)
        except Exception:  # a listener must never break the request that enqueued
            log.exception("outbox listener failed")


def present_ttl() -> timedelta:
    """How long a screen prompt stays worth showing."""
    return timedelta(seconds=getattr(settings, "EPPARK_PRESENT_TTL_S", 120))


def open_ttl() -> timedelta:
    """How long an open may still be carried out; later it is dropped, never run."""
    return timedelta(seconds=getattr(settings, "EPPARK_OPEN_TTL_S", 10))


def wire_payload(cmd_id: str, cmd: str, created_at: datetime, ttl_ms: int, args: Any) -> str:
    """The command as published to the robot (checked against the protocol first)."""
    return protocol.Command.from_dict(
        {"cmd_id": cmd_id, "cmd": cmd, "ts": created_at.isoformat(), "ttl_ms": ttl_ms, "args": args}
    ).to_json()


def ttl_ms(created_at: datetime, expires_at: datetime) -> int:
    """A command's time-to-live in milliseconds, as the wire carries it."""
    return max(1, int((expires_at - created_at).total_seconds() * 1000))


_INSERT = (
    "INSERT INTO devices_command (cmd_id, channel, cmd, args, created_at, expires_at, state,"
    " attempts, next_attempt_at, detail, recalls, robot_id, camera_id, visit_id,"
    " requested_by_id) VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, '', 0, %s, %s, %s, %s)"
    " RETURNING id"
)
# The states a lookup filters on are written into the SQL, not passed as parameters: the
# partial indexes over pending commands (command_pending_by_robot, _by_camera) serve only a
# query whose condition matches theirs, and a prepared statement's generic plan cannot see
# inside a parameter. (Measured with a month of history: the supersede took 173 µs.)
_PENDING = literal(CommandState.PENDING)
_SUPERSEDE_PRESENT = (
    f"UPDATE devices_command SET state = {literal(CommandState.EXPIRED)},"
    " detail = 'superseded by a newer prompt'"
    f" WHERE robot_id = %s AND cmd = 'present' AND state = {_PENDING}"
)
# PostgreSQL: a prompt the gateway holds locked (being marked sent, or acked) is on its way
# already; waiting for it would queue every read at this robot behind the gateway's batch.
_SUPERSEDE_PRESENT_UNLOCKED = (
    f"UPDATE devices_command SET state = {literal(CommandState.EXPIRED)},"
    " detail = 'superseded by a newer prompt'"
    " WHERE id IN (SELECT id FROM devices_command WHERE robot_id = %s AND cmd = 'present'"
    f" AND state = {_PENDING} FOR UPDATE SKIP LOCKED)"
)


def stage(
    cursor: Any,
    *,
    channel: str,
    cmd: str,
    args: dict[str, Any],
    now: datetime,
    ttl: timedelta,
    robot_id: int | None = None,
    robot_code: str | None = None,
    camera_id: int | None = None,
    visit_id: int | None = None,
    requested_by_id: int | None = None,
) -> int:
    """Store a command in the current transaction (on ``cursor``); its id.

    An MQTT command is handed to the in-process gateway when the transaction
    commits (and a ``present`` makes the robot's older undelivered prompts
    expire: only the newest screen matters).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox.stage must run inside transaction.atomic()")
    if channel == Channel.MQTT and robot_code is None:
        raise ValueError("an MQTT command needs the robot's code")
    cmd_id = uuid.uuid4().hex
    expires_at = now + ttl
    payload = None
    if channel == Channel.MQTT:
        assert robot_code is not None
        # build (and check) the wire form first: a bad command never reaches the outbox
        payload = wire_payload(cmd_id, cmd, now, ttl_ms(now, expires_at), args)
        if cmd == "present":
            cursor.execute(
                _SUPERSEDE_PRESENT_UNLOCKED
                if connection.vendor == "postgresql"
                else _SUPERSEDE_PRESENT,
                [robot_id],
            )
    stamp = ts(now)
    cursor.execute(
        _INSERT,
        [
            cmd_id,
            channel,
            cmd,
            js(args),
            stamp,
            ts(expires_at),
            CommandState.PENDING,
            stamp,
            robot_id,
            camera_id,
            visit_id,
            requested_by_id,
        ],
    )
    pk = int(cursor.fetchone()[0])
    if payload is not None and robot_code is not None:
        item = Outgoing(
            pk,
            protocol.topic(robot_code, "commands"),
            payload,
            expires_at,
            robot_code if cmd == "present" else None,
        )
        if _listeners:
            # per command, so that a rolled-back savepoint drops its own commands only
            transaction.on_commit(functools.partial(_hand_off, [item]))
        elif connection.vendor == "postgresql":
            # to the gateway process, which publishes it straight away. Sent after the commit,
            # on its own: a NOTIFY inside the transaction would hold PostgreSQL's one notify
            # lock through the commit's WAL flush and make every read's commit wait in line.
            # A crash in between loses only the wake-up; the poll sends the command.
            transaction.on_commit(functools.partial(_notify, notice(item)))
    return pk


_NOTIFY = "SELECT set_config('synchronous_commit', 'off', true), pg_notify(%s, %s)"
"""A NOTIFY is a transaction of its own (with an id and a commit record). Its commit need
not wait for the WAL flush: the command it announces is durable already, and a wake-up
lost in a crash only means the poll sends the command."""


def _notify(payload: str) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(_NOTIFY, [NOTIFY_CHANNEL, payload])
    except Exception:  # the poll delivers it; a lost wake-up only delays
        log.warning("outbox NOTIFY failed", exc_info=True)


NOTICE_MAX = 7900
"""PostgreSQL's NOTIFY payload limit is 8000 bytes; a longer command goes by the poll."""


def notice(item: Outgoing) -> str:
    """A command as a NOTIFY payload ("" when too long: the gateway then polls the outbox)."""
    text = json.dumps(
        [item.pk, item.topic, item.payload, item.expires_at.isoformat(), item.present_to],
        ensure_ascii=False,
    )
    return text if len(text.encode()) <= NOTICE_MAX else ""


def from_notice(text: str) -> Outgoing | None:
    """The command a NOTIFY payload carries; None for a bare wake-up (poll the outbox)."""
    if not text:
        return None
    pk, topic, payload, expires_at, present_to = json.loads(text)
    return Outgoing(int(pk), topic, payload, datetime.fromisoformat(expires_at), present_to)


def enqueue(
    *,
    channel: str,
    cmd: str,
    args: dict[str, Any],
    now: datetime,
    ttl: timedelta,
    robot: Robot | None = None,
    camera: Camera | None = None,
    visit: Any = None,
    requested_by: Any = None,
) -> Command:
    """Store a command for delivery after the current transaction commits; the row."""
    with transaction.atomic(), connection.cursor() as cursor:
        pk = stage(
            cursor,
            channel=channel,
            cmd=cmd,
            args=args,
            now=now,
            ttl=ttl,
            robot_id=robot.pk if robot else None,
            robot_code=robot.code if robot else None,
            camera_id=camera.pk if camera else None,
            visit_id=visit.pk if visit is not None else None,
            requested_by_id=requested_by.pk if requested_by is not None else None,
        )
    return Command.objects.get(pk=pk)


def present(robot: Robot, args: dict[str, Any], now: datetime, **extra: Any) -> Command:
    """Tell a robot what to say, show and light; older undelivered prompts are dropped."""
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


def camera_open_ttl(channel: str) -> timedelta:
    """How long a camera open waits: the API is called now; a reply waits for the next push."""
    return open_ttl() if channel == Channel.CAMERA_API else max(open_ttl(), timedelta(seconds=30))


def open_by_camera(camera: Camera, channel: str, now: datetime, **extra: Any) -> Command:
    """Open through the plate camera: its next HTTP reply, or its HTTP API."""
    return enqueue(
        channel=channel,
        cmd="open",
        args={},
        now=now,
        ttl=camera_open_ttl(channel),
        camera=camera,
        **extra,
    )


_WAITING_REPLY = (
    "SELECT id, expires_at FROM devices_command"
    f" WHERE camera_id = %s AND channel = {literal(Channel.CAMERA_REPLY)} AND state = {_PENDING}"
    " ORDER BY created_at, id"
)


def take_reply_open(camera_id: int, now: datetime) -> bool:
    """Claim a pending open that rides on this camera's reply (Vzenith comet, HXZX next push)."""
    with connection.cursor() as cursor:
        cursor.execute(_WAITING_REPLY, [camera_id])
        waiting = cursor.fetchall()
        if not waiting:  # the common case: one cheap query, no transaction
            return False
        stamp = ts(now)
        with transaction.atomic():
            for pk, expires_at in waiting:
                if aware(expires_at) < now:
                    cursor.execute(
                        "UPDATE devices_command SET state = %s,"
                        " detail = 'not collected by the camera in time'"
                        " WHERE id = %s AND state = %s",
                        [CommandState.EXPIRED, pk, CommandState.PENDING],
                    )
                    continue
                # a conditional UPDATE claims it: of two pushes at once, only one gets it
                cursor.execute(
                    "UPDATE devices_command SET state = %s, sent_at = %s, acked_at = %s,"
                    " attempts = attempts + 1 WHERE id = %s AND state = %s",
                    [CommandState.DONE, stamp, stamp, pk, CommandState.PENDING],
                )
                if cursor.rowcount == 1:
                    return True
    return False
