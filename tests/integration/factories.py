"""Small builders for integration tests: two lots with one of everything each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group, User
from django.utils import timezone

from eppark.accounts.models import Role, StaffProfile
from eppark.accounts.roles import GROUP_NAMES
from eppark.console.models import AbnormalOpen, Seat
from eppark.devices.models import Camera, Robot
from eppark.lots.models import Gate, Lot
from eppark.orders.models import Order
from eppark.passes.models import MonthlyPass, PassPlate, RenewalApplication
from eppark.stays.models import GateVisit, Stay

TARIFF = {
    "free_minutes": 30,
    "first": {"minutes": 60, "price": 500},
    "unit": {"minutes": 60, "price": 300},
    "cap": {"price": 3000, "per": "24h"},
}


def database_url_for_processes() -> str:
    """The URL of the test database, for a real process of the project's own to use."""
    from django.db import connection

    params = connection.settings_dict
    user = params.get("USER") or "postgres"
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{params['NAME']}"


def keyed_camera(key: str, **fields: Any) -> Camera:
    """A camera posting with endpoint ``key``: ``.key`` holds it here, the database its digest."""
    camera = Camera(**fields)
    camera.key = key
    camera.save()
    return camera


@dataclass
class LotWorld:
    """One lot with a gate pair, a robot, a camera, a pass, a stay, an order and an open."""

    lot: Lot
    entry: Gate
    exit: Gate
    robot: Robot
    camera: Camera
    monthly_pass: MonthlyPass
    stay: Stay
    order: Order
    abnormal_open: AbnormalOpen


def build_lot(
    code: str, name: str, plate: str, agent: User, now: datetime | None = None
) -> LotWorld:
    """A lot named ``name`` whose every record carries ``plate``."""
    now = now or timezone.now()
    lot = Lot.objects.create(
        code=code, name=name, capacity=10, tariff=TARIFF, temp_entry_confirmation=True
    )
    entry = Gate.objects.create(lot=lot, code="entry-1", name=f"{name}入口", direction="entry")
    exit_gate = Gate.objects.create(lot=lot, code="exit-1", name=f"{name}出口", direction="exit")
    robot = Robot.objects.create(
        code=f"EP-{code}", name=f"{name}出口", lot=lot, gate=exit_gate, phone="14400000001"
    )
    camera = keyed_camera(
        f"k-{code}", vendor="vzenith", lot=lot, gate=exit_gate, robot=robot, serial=f"sn-{code}"
    )
    monthly_pass = MonthlyPass.objects.create(
        lot=lot,
        owner=f"{name}车主",
        phone="13800000000",
        valid_from=now - timedelta(days=30),
        valid_until=now + timedelta(days=30),
    )
    PassPlate.objects.create(monthly_pass=monthly_pass, lot=lot, plate=plate)
    RenewalApplication.objects.create(monthly_pass=monthly_pass, lot=lot, phone="13800000000")
    stay = Stay.objects.create(
        lot=lot,
        plate=plate,
        entered_as="pass",
        entered_at=now - timedelta(hours=2),
        entry_gate=entry,
    )
    GateVisit.objects.create(
        gate=entry,
        lot=lot,
        plate=plate,
        arrived_at=stay.entered_at,
        scenario="entry.monthly_valid",
        opened=True,
        stay=stay,
    )
    order = Order.objects.create(
        kind="temp", lot=lot, plate=plate, stay=stay, amount=800, out_trade_no=f"T{code}0001"
    )
    abnormal = AbnormalOpen.objects.create(
        lot=lot,
        gate=exit_gate,
        agent=agent,
        opened_at=now,
        plate=plate,
        reason="special_vehicle",
        note=f"警车{plate}，警官进出",
    )
    return LotWorld(lot, entry, exit_gate, robot, camera, monthly_pass, stay, order, abnormal)


def staff(username: str, role: Role | None, lots: list[Lot], **extra: Any) -> User:
    """A staff user with a role, its group and lots (role None: a bare staff user)."""
    user = User.objects.create_user(username, password="pw-not-used", is_staff=True, **extra)
    if role is not None:
        profile = StaffProfile.objects.create(user=user, role=role, name=username)
        profile.lots.set(lots)
        user.groups.add(Group.objects.get(name=GROUP_NAMES[role]))
    if role is Role.AGENT:
        Seat.objects.create(number=f"10{user.pk:02d}", agent=user)
    return user


@dataclass
class FullLot:
    """A lot with one of every record the back office shows, and its own staff."""

    world: LotWorld
    agent: User
    operator: User


def build_full_lot(
    code: str, name: str, plate: str, phone: str, now: datetime | None = None
) -> FullLot:
    """``build_lot`` plus its staff (an agent with a seat, an operator), plate reads,
    commands, robot screen and events, and evidence; ``phone`` on every phone field."""
    from eppark.console.models import AbnormalOpenEvidence
    from eppark.devices.models import Command, PlateRead, RobotEvent, RobotScreen

    now = now or timezone.now()
    agent = staff(f"kf-{code}", Role.AGENT, [], first_name=f"{name}客服")
    world = build_lot(code, name, plate, agent, now)
    agent.staff.lots.set([world.lot])
    operator = staff(f"op-{code}", Role.OPERATOR, [world.lot], first_name=f"{name}运营")
    Lot.objects.filter(pk=world.lot.pk).update(
        emergency_contact_name=f"{name}值班", emergency_contact_phone=phone
    )
    Robot.objects.filter(pk=world.robot.pk).update(phone=phone)
    MonthlyPass.objects.filter(pk=world.monthly_pass.pk).update(phone=phone, note=f"{name}月卡")
    RenewalApplication.objects.filter(monthly_pass=world.monthly_pass).update(
        phone=phone, note=f"{name}续费"
    )
    Camera.objects.filter(pk=world.camera.pk).update(name=f"{name}出口相机")
    visit = GateVisit.objects.filter(stay=world.stay).first()
    PlateRead.objects.create(
        camera=world.camera,
        read_id=f"read-{code}",
        plate=plate,
        raw_plate=plate,
        read_at=now,
        received_at=now,
        visit=visit,
    )
    Command.objects.create(
        cmd_id=f"cmd-{code}",
        channel="mqtt",
        robot=world.robot,
        cmd="open",
        args={"plate": plate},
        created_at=now,
        expires_at=now + timedelta(seconds=30),
        next_attempt_at=now,
        visit=visit,
    )
    RobotScreen.objects.create(robot=world.robot, voice=f"{plate}，欢迎光临{name}")
    RobotEvent.objects.create(
        robot=world.robot, event_id=f"ev-{code}", type="call", ts=now, received_at=now
    )
    AbnormalOpenEvidence.objects.create(
        abnormal_open=world.abnormal_open,
        kind="scene",
        file=f"evidence/{code}/{code}-scene.jpg",
        taken_at=now,
    )
    Camera.objects.create(
        vendor="ezviz",
        name=f"{name}环境相机",
        lot=world.lot,
        robot=world.robot,
        ezviz_serial=f"ez-{code}",
    )
    payment_records(world, operator, name, now)
    call_records(world, agent, phone, now)
    return FullLot(world, agent, operator)


def call_centre(key: str = "k-cti-test-0001", **fields: Any) -> Any:
    """The call centre events come from (``.key`` holds its key here), made once."""
    from eppark.calls.models import CallCentre

    found = CallCentre.objects.filter(name=fields.get("name", "测试呼叫中心")).first()
    if found is not None:
        return found
    centre = CallCentre(**{"provider": "generic", "name": "测试呼叫中心", **fields})
    centre.key = key
    centre.save()
    return centre


def call_records(world: LotWorld, agent: User, phone: str, now: datetime) -> None:
    """A call from the lot's robot (``phone``) that its agent answered and closed, and its events.

    Closed: a test of the desk finds no open call at the robot unless it makes one.
    """
    from eppark.calls.models import Call, CallEvent

    centre = call_centre()
    call = Call.objects.create(
        centre=centre,
        call_id=f"call-{world.lot.code}",
        direction="inbound",
        state="ended",
        caller=phone,
        callee="4008001234",
        seat=agent.seat.number,
        agent=agent,
        robot=world.robot,
        lot=world.lot,
        gate=world.exit,
        plate=world.stay.plate,
        started_at=now - timedelta(minutes=5),
        answered_at=now - timedelta(minutes=5),
        ended_at=now - timedelta(minutes=4),
        closed_at=now - timedelta(minutes=4),
        closed_by=agent,
    )
    from eppark.console.models import AgentAction

    AgentAction.objects.create(
        agent=agent,
        call=call,
        lot=world.lot,
        gate=world.exit,
        action="close",
        plate=call.plate,
        before={"plate": call.plate},
        after={"plate": call.plate},
        at=now - timedelta(minutes=4),
    )
    for event in ("ringing", "answered", "hangup"):
        CallEvent.objects.create(
            centre=centre,
            call=call,
            provider_call_id=call.call_id,
            event=event,
            payload={"caller": phone},
            at=now,
            received_at=now,
        )


def payment_records(world: LotWorld, operator: User, name: str, now: datetime) -> None:
    """One of every payments record of the lot (its order's trade number on each), and a
    reconciliation of trades that are no order of ours (no lot)."""
    from eppark.payments.models import (
        CodePayment,
        Notification,
        Reconciliation,
        ReconciliationLine,
        Refund,
    )

    order, lot = world.order, world.lot
    number = order.out_trade_no
    Notification.objects.create(
        provider="sandbox",
        received_at=now,
        out_trade_no=number,
        transaction_id=f"tx-{number}",
        amount=order.amount,
        order=order,
        lot=lot,
        verdict="mismatch",
        detail=f"{name}金额不符",
    )
    CodePayment.objects.create(
        order=order,
        lot=lot,
        gate=world.exit,
        event_id=f"scan-{number}",
        channel="wechat",
        code_masked="13************0000",
        started_at=now,
        detail=f"{name}付款码",
    )
    Refund.objects.create(
        order=order,
        lot=lot,
        out_refund_no=f"R{number}-01",
        amount=order.amount,
        state="failed",
        reason=f"{name}重复缴费",
        requested_by=operator,
    )
    for where in (lot, None):
        day = Reconciliation.objects.create(
            lot=where,
            day=now.date(),
            provider=f"sandbox/{number[-6:]}",
            run_at=now,
            differences=1,
            detail=f"{name}对账",
        )
        ReconciliationLine.objects.create(
            reconciliation=day, out_trade_no=number, difference="amount", ours_amount=order.amount
        )
