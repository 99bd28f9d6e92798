"""The live gate loop: a plate read becomes a decision, a visit, a stay change and commands.

``handle_plate_read`` is called by the device endpoints for every plate a
camera pushes. In one transaction it records the read, finds the gate, the
pass and its group, the open stay and what it owes (the tariff engine), runs
the decision engine, records the gate visit, starts or closes the stay, and
stores the robot's commands in the outbox. The photo is written to storage
before that transaction, so no record ever points to missing evidence.

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
from django.db import IntegrityError, transaction

from eppark.devices import outbox
from eppark.devices.lpr import ADAPTERS
from eppark.devices.lpr.events import PlateRead as Read
from eppark.devices.models import Camera, Channel, PlateRead, Robot
from eppark.domain.decide import (
    Direction,
    EnteredAs,
    Situation,
    StayView,
    decide,
)
from eppark.domain.scenarios import Scenario
from eppark.domain.tariff import Payment, compute_fee
from eppark.domain.tariff.command import parse_rule_cached
from eppark.lots.models import Gate, Lot, OpeningChannel
from eppark.orders.models import Order, OrderState
from eppark.passes.models import MonthlyPass, PassPlate
from eppark.stays.models import GateVisit, Resolution, Stay, StayState

log = logging.getLogger(__name__)


class GateNotLinked(Exception):
    """The camera is not linked to a gate: its reads cannot be acted on."""


@dataclass(frozen=True)
class ReadOutcome:
    """What to answer the camera: open through the reply or not; the visit it belongs to."""

    open: bool
    visit: GateVisit | None
    duplicate: bool = False


def dedup_window() -> timedelta:
    """The same plate at the same gate within this window is one visit (camera re-sends)."""
    return timedelta(seconds=getattr(settings, "EPPARK_READ_DEDUP_SECONDS", 10))


# --- the read -------------------------------------------------------------------------------


def handle_plate_read(camera: Camera, read: Read, now: datetime) -> ReadOutcome:
    """Act on one plate read from ``camera``; idempotent per (camera, read id)."""
    gate = camera.gate
    if gate is None:
        raise GateNotLinked(f"camera {camera.pk} is not linked to a gate")
    photo = _store_photo(camera, read, now)
    record = PlateRead(
        camera=camera,
        read_id=read.read_id[:128],
        plate=read.plate or "",
        raw_plate=(read.raw_plate or "")[:64],
        read_at=read.read_at,
        received_at=now,
        offline=read.offline,
        photo=photo,
    )
    try:
        with transaction.atomic():
            if read.offline:
                record.save()
                _record_offline(gate, read, record)
                return ReadOutcome(open=False, visit=None)
            outcome = _decide_and_act(gate, camera, read, record, now)
            # the read is recorded last: a re-sent read (same camera and read id) fails
            # here and rolls back everything it would have done a second time
            record.visit, record.opened = outcome.visit, outcome.open
            record.save()
            return outcome
    except IntegrityError:
        # the same read arrived twice at once: the other request recorded it
        if photo:
            default_storage.delete(photo)
        earlier = _earlier_read(camera, read.read_id)
        if earlier is None:
            raise
        return earlier


def _earlier_read(camera: Camera, read_id: str) -> ReadOutcome | None:
    record = (
        PlateRead.objects.filter(camera=camera, read_id=read_id[:128])
        .select_related("visit")
        .first()
    )
    if record is None:
        return None
    return ReadOutcome(open=record.opened, visit=record.visit, duplicate=True)


def _store_photo(camera: Camera, read: Read, now: datetime) -> str:
    """Write the read's first image to storage; its name, or "" when there is none."""
    if not read.images:
        return ""
    image = read.images[0]
    suffix = ".png" if image.content_type == "image/png" else ".jpg"
    name = f"reads/{camera.lot_id}/{now:%Y/%m/%d}/{camera.pk}-{now:%H%M%S%f}{suffix}"
    return default_storage.save(name, ContentFile(image.data))


def _record_offline(gate: Gate, read: Read, record: PlateRead) -> None:
    """A backlog read the camera acted on by itself while offline: keep the stays right."""
    at = read.read_at or record.received_at
    if not read.plate:
        return
    if gate.direction == Direction.ENTRY:
        if not _open_stay(gate.lot, read.plate):
            monthly = _pass_for(gate.lot, read.plate)
            Stay.objects.create(
                lot=gate.lot,
                plate=read.plate,
                entered_as=EnteredAs.PASS if monthly else EnteredAs.TEMP,
                entered_at=at,
                entry_gate=gate,
                entry_photo=record.photo.name or "",
                monthly_pass=monthly,
            )
        return
    stay = _open_stay(gate.lot, read.plate)
    if stay is not None and stay.entered_at <= at:
        stay.exited_at, stay.exit_gate, stay.state = at, gate, StayState.LEFT
        stay.exit_photo = record.photo.name or ""
        stay.save(update_fields=["exited_at", "exit_gate", "state", "exit_photo"])


def _decide_and_act(
    gate: Gate, camera: Camera, read: Read, record: PlateRead, now: datetime
) -> ReadOutcome:
    lot = gate.lot
    plate = read.plate or ""
    if plate:
        repeat = (
            GateVisit.objects.filter(gate=gate, plate=plate, arrived_at__gte=now - dedup_window())
            .order_by("-arrived_at")
            .first()
        )
        if repeat is not None:
            return ReadOutcome(
                open=repeat.opened and _opens_by_reply(gate, camera), visit=repeat, duplicate=True
            )
    _supersede_waiting(gate, now)
    monthly = _pass_for(lot, plate) if plate else None
    stay = _open_stay(lot, plate) if plate and gate.direction == Direction.EXIT else None
    situation = Situation(
        now=now,
        direction=Direction(gate.direction),
        plate=plate or None,
        lot=lot.policy,
        monthly_pass=monthly.view(_group_inside(lot, monthly, plate)) if monthly else None,
        stay=_stay_view(lot, stay, now) if stay else None,
    )
    scenario = decide(situation)
    decision = scenario.to_json()
    visit = GateVisit.objects.create(
        gate=gate,
        lot=lot,
        plate=plate,
        arrived_at=now,
        photo=record.photo.name or "",
        scenario=scenario.id,
        decision=decision,
        expected_action=decision["expected_action"] or "",
        opened=scenario.opens,
        resolved_at=now if scenario.opens else None,
        resolution=Resolution.OPENED if scenario.opens else "",
        stay=stay,
    )
    if scenario.opens:
        visit.stay = _pass_through(gate, visit, monthly, stay, now)
        visit.save(update_fields=["stay"])
    robot = _robot(gate)
    if robot is not None:
        outbox.present(robot, present_args(scenario, visit, monthly, now), now, visit=visit)
    reply_opens = False
    if scenario.opens:
        reply_opens = _open_now(gate, camera, robot, visit, now)
    return ReadOutcome(open=reply_opens, visit=visit)


# --- what the decision needs -----------------------------------------------------------------


def _pass_for(lot: Lot, plate: str) -> MonthlyPass | None:
    row = PassPlate.objects.filter(lot=lot, plate=plate).select_related("monthly_pass").first()
    return row.monthly_pass if row else None


def _group_inside(lot: Lot, monthly: MonthlyPass, plate: str) -> int:
    """The pass group's *other* cars inside the lot now."""
    plates = list(monthly.plates.exclude(plate=plate).values_list("plate", flat=True))
    if not plates:
        return 0
    return (
        Stay.objects.filter(lot=lot, plate__in=plates, exited_at__isnull=True)
        .values("plate")
        .distinct()
        .count()
    )


def _open_stay(lot: Lot, plate: str) -> Stay | None:
    return (
        Stay.objects.filter(lot=lot, plate=plate, exited_at__isnull=True)
        .order_by("-entered_at")
        .first()
    )


def _stay_view(lot: Lot, stay: Stay, now: datetime) -> StayView:
    entered_as = EnteredAs.PASS if stay.entered_as == EnteredAs.PASS else EnteredAs.TEMP
    due = 0 if entered_as is EnteredAs.PASS else owed(lot, stay, now)
    return StayView(entered_as, due, stay.entered_at)


def stay_fee(lot: Lot, stay: Stay, now: datetime) -> tuple[int, int, int]:
    """(total, paid, due) of a temp stay at ``now``, by the lot's tariff and paid orders."""
    paid_orders = Order.objects.filter(stay=stay, state=OrderState.PAID, paid_at__isnull=False)
    payments = [
        Payment(order.paid_at, order.amount)
        for order in paid_orders
        if order.paid_at is not None and stay.entered_at <= order.paid_at <= now
    ]
    if not lot.tariff:
        paid = sum(p.amount for p in payments)
        return 0, paid, 0
    rule = parse_rule_cached(lot.tariff)
    result = compute_fee(rule, stay.entered_at, max(now, stay.entered_at), payments)
    return result.total, result.paid, result.due


def owed(lot: Lot, stay: Stay, now: datetime) -> int:
    """What a temp stay owes at ``now`` after payments and the exit grace."""
    return stay_fee(lot, stay, now)[2]


# --- the stay and the barrier -------------------------------------------------------------------


def _pass_through(
    gate: Gate, visit: GateVisit, monthly: MonthlyPass | None, stay: Stay | None, now: datetime
) -> Stay | None:
    """The car passes the barrier: an entry starts a stay, an exit closes it."""
    lot = gate.lot
    if gate.direction == Direction.ENTRY:
        if not visit.plate:
            return None
        Stay.objects.filter(
            lot=lot, plate=visit.plate, exited_at__isnull=True, entered_at__lte=now
        ).update(
            exited_at=now,
            state=StayState.CLOSED_BY_HAND,
            close_note="superseded: the car entered again without a recorded exit",
        )
        as_pass = visit.scenario == "entry.monthly_valid"
        return Stay.objects.create(
            lot=lot,
            plate=visit.plate,
            entered_as=EnteredAs.PASS if as_pass else EnteredAs.TEMP,
            entered_at=now,
            entry_gate=gate,
            entry_photo=visit.photo.name or "",
            monthly_pass=monthly,
        )
    if stay is None:
        return None
    if stay.entered_as != EnteredAs.PASS:
        _total, paid, due = stay_fee(lot, stay, now)
        stay.total, stay.paid = paid + due, paid  # inside the exit grace, what was paid is the fee
    stay.exited_at, stay.exit_gate, stay.state = now, gate, StayState.LEFT
    stay.exit_photo = visit.photo.name or ""
    stay.save(update_fields=["exited_at", "exit_gate", "state", "exit_photo", "total", "paid"])
    return stay


def _robot(gate: Gate) -> Robot | None:
    try:
        return gate.robot
    except Robot.DoesNotExist:
        return None


def plate_camera(gate: Gate) -> Camera | None:
    """The gate's plate camera (the first LPR camera linked to it)."""
    return (
        gate.cameras.filter(vendor__in=list(ADAPTERS)).order_by("pk").first() if gate.pk else None
    )


def opening_channel(gate: Gate, camera: Camera | None) -> str:
    """The channel an open takes at ``gate``: as configured, or chosen by the camera's vendor."""
    if gate.opening_channel != OpeningChannel.AUTO:
        return str(gate.opening_channel)
    if camera is not None and camera.vendor in ADAPTERS:
        if ADAPTERS[camera.vendor].opens_by_reply:  # type: ignore[index]
            return Channel.CAMERA_REPLY
        if camera.api_url:
            return Channel.CAMERA_API
    return OpeningChannel.ROBOT


def _opens_by_reply(gate: Gate, camera: Camera) -> bool:
    return opening_channel(gate, camera) == Channel.CAMERA_REPLY


def _open_now(
    gate: Gate, camera: Camera, robot: Robot | None, visit: GateVisit, now: datetime
) -> bool:
    """Open for the car the camera just read; True when the camera's reply does it."""
    channel = opening_channel(gate, camera)
    if channel == Channel.CAMERA_REPLY and ADAPTERS[camera.vendor].opens_by_reply:  # type: ignore[index]
        return True
    if channel == Channel.CAMERA_API and camera.api_url:
        outbox.open_by_camera(camera, Channel.CAMERA_API, now, visit=visit)
    elif robot is not None:
        outbox.open_by_robot(robot, now, reason=visit.scenario, visit=visit)
    else:
        log.warning("gate %s has no way to open: no robot and no camera channel", gate.pk)
    return False


def open_gate(
    gate: Gate, now: datetime, *, reason: str, by: Any = None, visit: GateVisit | None = None
) -> None:
    """Open ``gate`` for a decision made after the read (an agent, a payment), via its channel.

    The caller has already authorised the open and writes its own audit record;
    this stores the command in the outbox inside the caller's transaction.
    """
    camera = plate_camera(gate)
    channel = opening_channel(gate, camera)
    extra: dict[str, Any] = {"visit": visit, "requested_by": by}
    if channel in (Channel.CAMERA_REPLY, Channel.CAMERA_API) and camera is not None:
        outbox.open_by_camera(camera, channel, now, **extra)
        return
    robot = _robot(gate)
    if robot is None:
        raise GateNotLinked(f"gate {gate.pk} has no robot and no camera to open it")
    outbox.open_by_robot(robot, now, reason=reason, **extra)


def _supersede_waiting(gate: Gate, now: datetime) -> None:
    """A new car at the gate ends the previous car's unresolved visit."""
    GateVisit.objects.filter(gate=gate, resolved_at__isnull=True).update(
        resolved_at=now, resolution=Resolution.SUPERSEDED
    )


# --- what the robot shows -------------------------------------------------------------------------


def qr_url(kind: str, visit: GateVisit) -> str:
    """The URL a robot's QR code encodes: a signed token naming the QR's purpose and visit."""
    token = signing.dumps({"k": kind, "v": visit.pk}, salt="eppark.qr", compress=True)
    base = getattr(settings, "EPPARK_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
    return f"{base}/q/{token}"


def present_args(
    scenario: Scenario, visit: GateVisit, monthly: MonthlyPass | None, now: datetime
) -> dict[str, Any]:
    """The robot's ``present`` command: the scenario's voice, display and light."""
    decision = scenario.to_json()
    display: dict[str, Any] = dict(decision["display"])
    if display["kind"] == "qr":
        display["qr"] = qr_url(display["qr"], visit)
    elif display["kind"] == "vehicles":
        display["vehicles"] = _group_vehicles(visit.lot, monthly, visit.plate)
    return {"voice": decision["voice"], "display": display, "light": decision["light"]}


def _group_vehicles(lot: Lot, monthly: MonthlyPass | None, plate: str) -> list[dict[str, Any]]:
    """The pass group's cars inside, with their entry photos, for the shared-full screen."""
    if monthly is None:
        return []
    plates = list(monthly.plates.exclude(plate=plate).values_list("plate", flat=True))
    stays = Stay.objects.filter(lot=lot, plate__in=plates, exited_at__isnull=True).order_by(
        "entered_at"
    )[:20]
    base = getattr(settings, "EPPARK_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
    return [
        {
            "plate": stay.plate,
            "photo_url": f"{base}{default_storage.url(stay.entry_photo.name)}"
            if stay.entry_photo
            else None,
            "entered_at": stay.entered_at.isoformat(),
        }
        for stay in stays
    ]
