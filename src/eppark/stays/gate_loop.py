"""The live gate loop: a plate read becomes a decision, a visit, a stay change and commands.

``handle_plate_read`` is called by the device endpoints for every plate a
camera pushes. It finds the pass and its group, the open stay and what it
owes (the tariff engine), runs the decision engine, and then, in one
transaction, records the gate visit, starts or closes the stay, stores the
robot's commands in the outbox and records the read itself. The photo is
written to storage before that transaction, so no record ever points to
missing evidence.

This is the hot path (a read must be answered in milliseconds, hundreds a
second): the camera, gate, lot and robot come from memory
(``eppark.devices.registry``) and the database work is a few plain
statements on one cursor (``eppark.rawsql``), not the ORM.

``open_gate`` is how an open decided later (an agent, a payment) reaches the
barrier, through the gate's opening channel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction

from eppark.devices import outbox
from eppark.devices.lpr import ADAPTERS
from eppark.devices.lpr.events import PlateRead as Read
from eppark.devices.models import Camera, Channel, Robot
from eppark.devices.registry import CameraConfig, GateConfig
from eppark.domain import stays as stay_rules
from eppark.domain.decide import (
    Direction,
    EnteredAs,
    PassView,
    Situation,
    StayView,
    decide,
)
from eppark.domain.scenarios import Scenario
from eppark.domain.tariff import Payment
from eppark.evidence import links as evidence_links
from eppark.lots.models import Gate, Lot, OpeningChannel
from eppark.orders.models import Order, OrderState
from eppark.passes.models import PassPlate
from eppark.rawsql import js, ts
from eppark.stays import offline, stay_records
from eppark.stays.models import Resolution, Stay
from eppark.stays.stay_records import OpenStayRow

log = logging.getLogger(__name__)


class GateNotLinked(Exception):
    """The camera is not linked to a gate: its reads cannot be acted on."""


@dataclass(frozen=True)
class ReadOutcome:
    """What to answer the camera: open through the reply or not; the visit it belongs to."""

    open: bool
    visit_id: int | None
    duplicate: bool = False


def dedup_window() -> timedelta:
    """The same plate at the same gate within this window is one visit (camera re-sends)."""
    return timedelta(seconds=getattr(settings, "EPPARK_READ_DEDUP_SECONDS", 10))


# --- the read -------------------------------------------------------------------------------


def handle_plate_read(camera: CameraConfig, read: Read, now: datetime) -> ReadOutcome:
    """Act on one plate read from ``camera``; idempotent per (camera, read id)."""
    gate = camera.gate
    if gate is None:
        raise GateNotLinked(f"camera {camera.pk} is not linked to a gate")
    photo = _store_photo(camera, read, now)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if read.offline:
                _insert_read(cursor, camera, read, now, photo, None, opened=False)
                offline.record(cursor, gate, read, photo, now)
                return ReadOutcome(open=False, visit_id=None)
            outcome = _decide_and_act(cursor, gate, camera, read, photo, now)
            # the read is recorded last: a re-sent read (same camera and read id) fails
            # here and rolls back everything it would have done a second time
            _insert_read(cursor, camera, read, now, photo, outcome.visit_id, outcome.open)
            return outcome
    except IntegrityError:
        # the same read arrived twice at once: the other request recorded it
        if photo:
            default_storage.delete(photo)
        earlier = _earlier_read(camera.pk, read.read_id)
        if earlier is None:
            raise
        return earlier


_INSERT_READ = (
    "INSERT INTO devices_plateread (camera_id, read_id, plate, raw_plate, read_at, received_at,"
    " offline, photo, visit_id, opened) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _insert_read(
    cursor: Any,
    camera: CameraConfig,
    read: Read,
    now: datetime,
    photo: str,
    visit_id: int | None,
    opened: bool,
) -> None:
    cursor.execute(
        _INSERT_READ,
        [
            camera.pk,
            read.read_id[:128],
            read.plate or "",
            (read.raw_plate or "")[:64],
            ts(read.read_at),
            ts(now),
            read.offline,
            photo,
            visit_id,
            opened,
        ],
    )


def _earlier_read(camera_id: int, read_id: str) -> ReadOutcome | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT opened, visit_id FROM devices_plateread WHERE camera_id = %s AND read_id = %s",
            [camera_id, read_id[:128]],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return ReadOutcome(open=bool(row[0]), visit_id=row[1], duplicate=True)


def _store_photo(camera: CameraConfig, read: Read, now: datetime) -> str:
    """Write the read's first image to storage; its name, or "" when there is none."""
    if not read.images:
        return ""
    image = read.images[0]
    suffix = ".png" if image.content_type == "image/png" else ".jpg"
    name = f"reads/{camera.lot_id}/{now:%Y/%m/%d}/{camera.pk}-{now:%H%M%S%f}{suffix}"
    return default_storage.save(name, ContentFile(image.data))


# --- what the decision needs -----------------------------------------------------------------

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
    pass_id, monthly = stay_records.pass_for(cursor, gate.lot_id, plate) if plate else (None, None)
    leaving = plate and gate.direction == Direction.EXIT
    exit_stay = stay_records.open_stay(cursor, gate.lot_id, plate) if leaving else None
    payments = (
        stay_records.payments(cursor, exit_stay.pk)
        if exit_stay is not None and exit_stay.entered_as is not EnteredAs.PASS
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
    scenario = decide(situation)
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


def _stay_view(
    tariff: dict[str, Any], stay: OpenStayRow, payments: list[Payment], now: datetime
) -> StayView:
    return StayView(
        stay.entered_as, stay_rules.charge(stay.stay, tariff, payments, now).due, stay.entered_at
    )


def fee(
    tariff: dict[str, Any], entered_at: datetime, payments: list[Payment], now: datetime
) -> tuple[int, int, int]:
    """(total, paid, due) of a temp stay at ``now`` by ``tariff``, counting paid orders."""
    cost = stay_rules.charge(stay_rules.OpenStay(EnteredAs.TEMP, entered_at), tariff, payments, now)
    return cost.total, cost.paid, cost.due


def stay_fee(lot: Lot, stay: Stay, now: datetime) -> tuple[int, int, int]:
    """(total, paid, due) of a temp stay at ``now``, by the lot's tariff and paid orders."""
    paid_orders = Order.objects.filter(stay=stay, state=OrderState.PAID, paid_at__isnull=False)
    payments = [Payment(o.paid_at, o.amount) for o in paid_orders if o.paid_at is not None]
    return fee(lot.tariff or {}, stay.entered_at, payments, now)


def owed(lot: Lot, stay: Stay, now: datetime) -> int:
    """What a temp stay owes at ``now`` after payments and the exit grace."""
    return stay_fee(lot, stay, now)[2]


# --- the stay and the barrier -------------------------------------------------------------------

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


# --- what the robot shows -------------------------------------------------------------------------


def qr_url(kind: str, visit_id: int) -> str:
    """The URL a robot's QR code encodes: a signed token naming the QR's purpose and visit."""
    token = signing.dumps({"k": kind, "v": visit_id}, salt="eppark.qr", compress=True)
    return f"{public_url()}/q/{token}"


def public_url() -> str:
    """Where drivers' phones reach this server (QR codes, photo links)."""
    return str(getattr(settings, "EPPARK_PUBLIC_URL", "http://127.0.0.1:8000")).rstrip("/")


def present_args(
    decision: dict[str, Any], visit_id: int, lot_id: int, plate: str, pass_id: int | None
) -> dict[str, Any]:
    """The robot's ``present`` command: the decision's voice, display and light."""
    display: dict[str, Any] = dict(decision["display"])
    if display["kind"] == "qr":
        display["qr"] = qr_url(display["qr"], visit_id)
    elif display["kind"] == "vehicles":
        display["vehicles"] = _group_vehicles(lot_id, pass_id, plate)
    return {"voice": decision["voice"], "display": display, "light": decision["light"]}


def _group_vehicles(lot_id: int, pass_id: int | None, plate: str) -> list[dict[str, Any]]:
    """The pass group's cars inside, with their entry photos, for the shared-full screen."""
    if pass_id is None:
        return []
    plates = list(
        PassPlate.objects.filter(monthly_pass_id=pass_id)
        .exclude(plate=plate)
        .values_list("plate", flat=True)
    )
    stays = Stay.objects.filter(lot_id=lot_id, plate__in=plates, exited_at__isnull=True).order_by(
        "entered_at"
    )[:20]
    return [
        {
            "plate": stay.plate,
            "photo_url": evidence_links.signed_url(
                "stay", stay.pk, "entry_photo", stay.entry_photo.name or ""
            )
            if stay.entry_photo
            else None,
            "entered_at": stay.entered_at.isoformat(),
        }
        for stay in stays
    ]
