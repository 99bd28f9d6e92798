"""The gateway's database side: what to send, and what robots reported (plain sync Django).

The dispatcher asks ``due_commands`` for what to publish, then ``mark_sent``
(``mark_first_sent`` for a hand-off); what robots report lands in
``apply_reports`` (``apply_status``, ``apply_acks``, ``apply_events``);
``stage_recalls`` asks robots again for final acks that never came. Every
function is idempotent: QoS 1 redelivers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import IntegrityError, connection, transaction
from django.db.models import DateTimeField, Q, Value
from django.db.models.functions import Coalesce
from django.db.models.signals import post_delete, post_save

from eppark.dbstate import unreachable
from eppark.devices import outbox
from eppark.devices.models import (
    MAX_RECALLS,
    OPEN_STATES,
    Camera,
    Channel,
    Command,
    CommandState,
    Robot,
    RobotEvent,
)
from eppark.devices.outbox import Outgoing
from eppark.domain.errors import BadInput
from eppark.gateway import protocol
from eppark.payments import codepay
from eppark.rawsql import any_of, js, literal, loads, ts
from eppark.stays.congestion import resolve, waiting_at
from eppark.stays.models import Resolution

log = logging.getLogger(__name__)
M = TypeVar("M")

RETRY_BASE = timedelta(seconds=2)
RETRY_MAX = timedelta(seconds=15)
SETTLED = (CommandState.DONE, CommandState.FAILED)
"""What a robot's ack never changes. ``expired`` is the server giving up on hearing back;
a robot that ran the command in time (by its own clock) and says so is believed."""


@dataclass(frozen=True)
class BarrierJob:
    """One open to carry out through a camera's HTTP API."""

    pk: int
    vendor: str
    url: str
    username: str
    password: str


def expire_overdue(now: datetime) -> int:
    """Mark undelivered commands past their time-to-live expired; they are never sent late."""
    return Command.objects.filter(state__in=OPEN_STATES, expires_at__lt=now).update(
        state=CommandState.EXPIRED, detail="expired before the robot acknowledged it"
    )


def due_commands(now: datetime, limit: int = 200) -> list[Outgoing]:
    """MQTT commands to (re)publish now, oldest first."""
    expire_overdue(now)
    rows = (
        Command.objects.filter(
            channel=Channel.MQTT,
            state__in=OPEN_STATES,
            next_attempt_at__lte=now,
            robot__isnull=False,
        )
        .select_related("robot")
        .order_by("created_at")[:limit]
    )
    out = []
    for row in rows:
        assert row.robot is not None
        ttl = outbox.ttl_ms(row.created_at, row.expires_at)
        payload = outbox.wire_payload(row.cmd_id, row.cmd, row.created_at, ttl, row.args)
        topic = protocol.topic(row.robot.code, "commands")
        present_to = row.robot.code if row.cmd == "present" else None
        out.append(Outgoing(row.pk, topic, payload, row.expires_at, present_to))
    return out


RECALL_GAPS = (timedelta(seconds=5), timedelta(seconds=60), timedelta(minutes=10))
"""When to ask a robot again for a final ack that never came: this long after the
command expired, then after each ask. Asking is harmless (``resend_acks`` makes the
robot repeat acks, never act), so a lost answer is simply asked for again."""
RECALL_WITHIN = timedelta(hours=1)
"""Robots remember the acks of the last hour's commands at least (the protocol's rule)."""
RESEND_TTL = timedelta(seconds=30)
assert len(RECALL_GAPS) == MAX_RECALLS


def stage_recalls(now: datetime, limit: int = 500) -> int:
    """Ask online robots about commands they were sent whose final ack never came back.

    The ack can be lost with a broker that went down (QoS 1 holds only while the
    broker does): the server then records an open as expired although the robot
    ran it, or a prompt as accepted for ever. One ``resend_acks`` per robot (and
    per 50 commands) goes through the outbox; the acks it brings back settle the
    commands through ``apply_acks``. How many asks were staged.
    """
    unanswered = (
        Command.objects.filter(
            Q(state=CommandState.ACCEPTED) | Q(state=CommandState.EXPIRED, acked_at__isnull=True),
            sent_at__isnull=False,
            recalls__lt=MAX_RECALLS,
            created_at__gte=now - RECALL_WITHIN,
            expires_at__lte=now - RECALL_GAPS[0],
            next_attempt_at__lte=now,
            channel=Channel.MQTT,
            robot__online=True,
        )
        .exclude(cmd=protocol.ResendAcks.CMD)
        .order_by("robot_id", "created_at")
        .values_list("pk", "cmd_id", "recalls", "robot_id", "robot__code")[:limit]
    )
    by_robot: dict[tuple[int, str], list[tuple[int, str, int]]] = {}
    for pk, cmd_id, recalls, robot_id, code in unanswered:
        by_robot.setdefault((robot_id, code), []).append((pk, cmd_id, recalls))
    staged = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for (robot_id, code), commands in by_robot.items():
            for start in range(0, len(commands), protocol.MAX_RESEND_ACKS):
                chunk = commands[start : start + protocol.MAX_RESEND_ACKS]
                outbox.stage(
                    cursor,
                    channel=Channel.MQTT,
                    cmd=protocol.ResendAcks.CMD,
                    args={"cmd_ids": [cmd_id for _pk, cmd_id, _n in chunk]},
                    now=now,
                    ttl=RESEND_TTL,
                    robot_id=robot_id,
                    robot_code=code,
                )
                staged += 1
        asked: dict[int, list[int]] = {}  # times asked before → commands
        for commands in by_robot.values():
            for pk, _cmd_id, recalls in commands:
                asked.setdefault(recalls, []).append(pk)
        for recalls, pks in asked.items():
            gap = RECALL_GAPS[min(recalls + 1, MAX_RECALLS - 1)]
            _unlocked(Command.objects.filter(pk__in=pks, recalls=recalls)).update(
                recalls=recalls + 1, next_attempt_at=now + gap
            )
    return staged


def _unlocked(rows: Any) -> Any:
    """``rows`` without those another transaction holds (PostgreSQL; SQLite has no row locks).

    The gateway's two database threads update commands in batches; waiting for each
    other's rows, in whatever order each batch locks them, could deadlock. A row held
    by the other side is being settled or sent right now, which is what skipping it needs.
    """
    if connection.vendor != "postgresql":
        return rows
    return Command.objects.filter(pk__in=rows.select_for_update(skip_locked=True).values("pk"))


def mark_first_sent(pks: list[int], now: datetime) -> None:
    """Record the first publish of fresh commands (one statement for a whole hand-off).

    The robot's ack may already be in (robots answer within milliseconds, and first
    sends are recorded in batches): such a command keeps its state and gets only its
    send time. On PostgreSQL rows locked by someone else are skipped, not waited for:
    an ack being applied to them or a newer prompt superseding them. Waiting would
    lock rows in another order than the ack batch does, and deadlock.
    """
    if not pks:
        return
    among, ids = any_of(pks)
    fresh = f"SELECT id FROM devices_command WHERE id {among} AND attempts = 0"
    if connection.vendor == "postgresql":
        fresh += " FOR UPDATE SKIP LOCKED"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE devices_command SET attempts = 1, sent_at = %s, next_attempt_at = %s,"
            f" state = CASE WHEN state = {literal(CommandState.PENDING)}"
            f" THEN {literal(CommandState.SENT)} ELSE state END"
            f" WHERE id IN ({fresh})",
            [ts(now), ts(now + RETRY_BASE), ids],
        )


def mark_sent(pks: list[int], now: datetime) -> None:
    """Record a publish; the next retry waits longer each time, until an ack or expiry.

    A command the robot acked meanwhile (its ack applied between the publish and
    this) is left alone: the update is guarded by the state, so an ack is never
    overwritten back to ``sent`` and then expired.
    """
    if not pks:
        return
    tried: dict[int, list[int]] = {}  # attempts so far → commands
    for pk, attempts in Command.objects.filter(pk__in=pks, state__in=OPEN_STATES).values_list(
        "pk", "attempts"
    ):
        tried.setdefault(attempts, []).append(pk)
    with transaction.atomic():
        for attempts, group in tried.items():
            rows = Command.objects.filter(pk__in=group, attempts=attempts, state__in=OPEN_STATES)
            _unlocked(rows).update(
                attempts=attempts + 1,
                sent_at=Coalesce("sent_at", Value(now, output_field=DateTimeField())),
                next_attempt_at=now + min(RETRY_BASE * (2**attempts), RETRY_MAX),
                state=CommandState.SENT,
            )


def apply_reports(batch: list[tuple[str, str, bytes]], now: datetime) -> None:
    """Apply a batch of (robot code, topic kind, payload): acks and events, then statuses.

    Statuses come last: a robot's events mark it online, and an ``offline`` sent after
    them in the same batch (its goodbye, or its last will) must have the last word.
    An unreachable database raises (the caller keeps the batch and applies it again
    when the database is back: every step is idempotent); any other failure is one
    message's or one kind's, logged, and does not stop the rest.
    """
    for kind, apply in (("acks", apply_acks), ("events", apply_events)):
        items = [(code, payload) for code, k, payload in batch if k == kind]
        if items:
            try:
                apply(items, now)
            except Exception as error:
                if unreachable(error):
                    raise
                log.exception("gateway: applying %d %s failed", len(items), kind)
    for code, kind, payload in batch:
        if kind == "status":
            try:
                apply_status(code, payload, now)
            except Exception as error:  # one robot's bad message must not stop the others
                if unreachable(error):
                    raise
                log.exception("gateway: handling a status from %s failed", code)


def _readable(
    items: list[tuple[str, bytes]], read: Callable[[bytes], M], what: str
) -> list[tuple[str, M]]:
    """The (robot code, message) pairs that read; each one that does not is logged and dropped."""
    out = []
    for code, payload in items:
        try:
            out.append((code, read(payload)))
        except BadInput as exc:
            log.warning("robot %s sent a bad %s: %s", code, what, exc)
    return out


@dataclass
class _Acked:
    """A command's standing after the acks of one batch."""

    pk: int
    cmd: str
    args: dict[str, Any]
    robot_id: int
    state: str
    detail: str = ""
    changed: bool = False


def apply_acks(acks: list[tuple[str, bytes]], now: datetime) -> None:
    """Robots' acks, in arrival order, in a few statements for the whole batch.

    A command moves on until it is done or failed (an ack after that changes
    nothing: QoS 1 redelivers). One the server had marked expired (no ack in
    time, e.g. across a broker outage) becomes done or failed when the robot
    says it ran it: the robot checked the time-to-live by its own clock, and the
    record must show what happened at the gate. A ``present``'s ``done`` becomes
    the robot's screen unless the robot already reported a newer one.
    """
    parsed = _readable(acks, protocol.Ack.from_json, "ack")
    if not parsed:
        return
    among, cmd_ids = any_of(sorted({ack.cmd_id for _, ack in parsed}))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.cmd_id, c.id, c.cmd, c.args, c.robot_id, r.code, c.state"
            " FROM devices_command c JOIN devices_robot r ON r.id = c.robot_id"
            f" WHERE c.cmd_id {among}",
            [cmd_ids],
        )
        rows = cursor.fetchall()
    known = {
        (cmd_id, code): _Acked(pk, cmd, loads(args), robot_id, state)
        for cmd_id, pk, cmd, args, robot_id, code, state in rows
    }
    screens: dict[int, dict[str, Any]] = {}
    for code, ack in parsed:
        command = known.get((ack.cmd_id, code))
        if command is None:
            log.info("robot %s acked unknown command %s", code, ack.cmd_id)
            continue
        if command.state not in SETTLED and not (
            command.state == CommandState.EXPIRED and ack.status == "accepted"
        ):
            command.state, command.detail, command.changed = ack.status, ack.detail or "", True
        if ack.status == "done" and command.cmd == "present":
            screen = _screen(command, ack)
            held = screens.get(command.robot_id)
            if held is None or screen["since"] >= held["since"]:
                screens[command.robot_id] = screen
    groups: dict[tuple[str, str], list[int]] = {}
    for command in known.values():
        if command.changed:
            groups.setdefault((command.state, command.detail[:500]), []).append(command.pk)
    with transaction.atomic(), connection.cursor() as cursor:
        for (state, detail), pks in groups.items():
            among, ids = any_of(sorted(pks))
            cursor.execute(
                # an ack proves the send: its record may have been skipped (first sends are
                # recorded in batches that pass over rows an ack batch holds) or not made yet
                "UPDATE devices_command SET state = %s, acked_at = %s, detail = %s,"
                " sent_at = COALESCE(sent_at, %s)"
                f" WHERE id {among} AND state NOT IN ({literal(*SETTLED)})",
                [state, ts(now), detail, ts(now), ids],
            )
        if screens:
            _remember_screens(cursor, screens)


def _screen(command: _Acked, ack: protocol.Ack) -> dict[str, Any]:
    """What the robot shows after a ``present``: its own report, else what it was told."""
    screen = ack.screen
    if screen is not None and screen.display is not None:
        return {
            "voice": screen.voice or "",
            "display": screen.display.to_dict(),
            "light": screen.light or "",
            "since": screen.since or ack.ts,
            "cmd_id": ack.cmd_id,
        }
    return {
        "voice": command.args.get("voice", ""),
        "display": command.args.get("display", {}),
        "light": command.args.get("light", ""),
        "since": ack.ts,
        "cmd_id": ack.cmd_id,
    }


_REMEMBER_SCREEN = (
    "INSERT INTO devices_robotscreen (robot_id, voice, display, light, since, cmd_id)"
    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (robot_id) DO UPDATE SET"
    " voice = excluded.voice, display = excluded.display, light = excluded.light,"
    " since = excluded.since, cmd_id = excluded.cmd_id"
    " WHERE devices_robotscreen.since IS NULL OR devices_robotscreen.since <= excluded.since"
)


def _remember_screens(cursor: Any, screens: dict[int, dict[str, Any]]) -> None:
    """Store each robot's newest screen; an older prompt's late ack overwrites nothing."""
    cursor.executemany(
        _REMEMBER_SCREEN,
        [
            (
                robot_id,
                screen["voice"],
                js(screen["display"]),
                screen["light"],
                ts(screen["since"]),
                screen["cmd_id"],
            )
            for robot_id, screen in sorted(screens.items())
        ],
    )


def apply_status(code: str, payload: bytes, now: datetime) -> None:
    """A robot's retained status: online or offline (the last will)."""
    try:
        state = protocol.parse_status(payload)
    except BadInput:
        log.warning("robot %s sent a bad status", code)
        return
    Robot.objects.filter(code=code).update(online=state == protocol.ONLINE, last_seen_at=now)
    if state == protocol.ONLINE:
        _seen[code] = time.monotonic()
    else:
        _seen.pop(code, None)  # its next event marks it online again


SEEN_REFRESH_S = 10.0
"""A robot's events keep it online; its row is written at most this often (not per batch)."""
_seen: dict[str, float] = {}  # robot code → when this process last recorded it online


def forget_seen(*_args: Any, **_kwargs: Any) -> None:
    """Forget which robots were recorded online, and their ids (a robot was saved or deleted)."""
    _seen.clear()
    _robot_pks.clear()


def connect_signals() -> None:
    """A robot saved or deleted (provisioning, the admin) is recorded afresh by its events."""
    post_save.connect(forget_seen, sender=Robot, dispatch_uid="gateway-seen-save")
    post_delete.connect(forget_seen, sender=Robot, dispatch_uid="gateway-seen-delete")


def _mark_seen(robots: dict[str, int], now: datetime) -> None:
    """Record robots that sent events as online and last seen now, at most every few seconds."""
    clock = time.monotonic()
    due = {
        code: pk
        for code, pk in robots.items()
        if _seen.get(code, -SEEN_REFRESH_S) <= clock - SEEN_REFRESH_S
    }
    if due:
        Robot.objects.filter(pk__in=list(due.values())).update(online=True, last_seen_at=now)
        for code in due:
            _seen[code] = clock


ACTING_EVENTS = frozenset({"loop", "qr_scanned", "id_photo"})
"""Events acted on one by one (a car backing away; a code shown to the scanner, which may pay
what the waiting car owes: ``eppark.payments.codepay``; an ID photo, stored for the call at
the robot: ``eppark.console.evidence``); the others are only recorded."""


def apply_events(events: list[tuple[str, bytes]], now: datetime) -> None:
    """Robots' events, once per event id: recorded in bulk; the acting ones one by one."""
    parsed = _readable(events, protocol.Event.from_json, "event")
    robots = _robot_ids({code for code, _ in parsed})
    plain = [
        (
            robots[code],
            event.event_id,
            event.type,
            ts(event.ts),
            js(event.data.to_dict()),
            ts(now),
        )
        for code, event in parsed
        if code in robots and event.type not in ACTING_EVENTS
    ]
    if plain:
        with connection.cursor() as cursor:
            cursor.executemany(_RECORD_EVENT, plain)  # redeliveries: once
    if robots:
        _mark_seen(robots, now)
    for code, event in parsed:
        if code in robots and event.type in ACTING_EVENTS:
            _act_on(code, event, now)


_RECORD_EVENT = (
    "INSERT INTO devices_robotevent (robot_id, event_id, type, ts, data, received_at)"
    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (robot_id, event_id) DO NOTHING"
)
_robot_pks: dict[str, int] = {}  # robot code → id; forgotten when a robot is saved or deleted


def _robot_ids(codes: set[str]) -> dict[str, int]:
    """The ids of the robots with these codes (unknown codes are left out)."""
    missing = codes - _robot_pks.keys()
    if missing:
        _robot_pks.update(Robot.objects.filter(code__in=missing).values_list("code", "pk"))
    return {code: _robot_pks[code] for code in codes if code in _robot_pks}


def _act_on(code: str, event: protocol.Event, now: datetime) -> RobotEvent | None:
    robot = Robot.objects.filter(code=code).first()
    if robot is None:
        return None
    if isinstance(event.data, protocol.IdPhoto):
        from eppark.console.evidence import receive_id_photo  # the desk's side of the gateway

        return receive_id_photo(robot, event, now)
    data = event.data.to_dict()
    try:
        with transaction.atomic():
            record = RobotEvent.objects.create(
                robot=robot,
                event_id=event.event_id,
                type=event.type,
                ts=event.ts,
                data=codepay.recorded_data(data) if event.type == "qr_scanned" else data,
                received_at=now,
            )
    except IntegrityError:
        return None  # a redelivery
    if robot.gate_id is None:
        return record
    if event.type == "loop" and not record.data.get("present", True):
        visit = waiting_at(robot.gate_id)
        if visit is not None and visit.arrived_at <= event.ts:
            resolve(visit, Resolution.LEFT, now)
    elif isinstance(event.data, protocol.QrScanned):
        # a code shown to the scanner is not by itself the driver's action: only a payment
        # code that pays what the car owes lets it go (eppark.payments.codepay)
        codepay.accept_scan(robot, record, event.data.code, now)
    return record


def due_barrier_jobs(now: datetime, limit: int = 50) -> list[BarrierJob]:
    """Opens to carry out through camera HTTP APIs (Hikvision, Dahua)."""
    expire_overdue(now)
    rows = Command.objects.filter(
        channel=Channel.CAMERA_API,
        state__in=OPEN_STATES,
        next_attempt_at__lte=now,
        camera__isnull=False,
    ).select_related("camera")[:limit]
    jobs = []
    for row in rows:
        camera: Camera | None = row.camera
        if camera is None or not camera.api_url:
            continue
        jobs.append(
            BarrierJob(
                row.pk, camera.vendor, camera.api_url, camera.api_username, camera.api_password
            )
        )
    return jobs


def finish_barrier_job(pk: int, now: datetime, error: str | None) -> None:
    """Record the outcome of a camera API open (a failure is retried until it expires)."""
    command = Command.objects.filter(pk=pk, state__in=OPEN_STATES).first()
    if command is None:
        return
    command.attempts += 1
    command.sent_at = command.sent_at or now
    if error is None:
        command.state, command.acked_at, command.detail = CommandState.DONE, now, ""
    else:
        command.detail = error[:500]
        command.next_attempt_at = now + timedelta(seconds=1)
    command.save(
        update_fields=["attempts", "sent_at", "state", "acked_at", "detail", "next_attempt_at"]
    )
