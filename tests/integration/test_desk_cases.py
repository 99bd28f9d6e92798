"""The agent desk's actions (scenarios.md §2) on real records: a call from a robot's number,
the car its gate read, and what each action leaves: visits, stays, the robot's commands,
the audit log. The browser tests drive the same actions through the page."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db.models import Q
from django.test import Client
from django.utils import timezone

from eppark.accounts.models import Role
from eppark.calls.cti.generic import signature
from eppark.calls.models import Call, CallCentre, CallState
from eppark.console import cases
from eppark.console.models import AbnormalOpen, AgentAction, CapturedPhoto, EvidenceKind
from eppark.devices.keys import key_digest, key_hint
from eppark.devices.models import Command, Robot
from eppark.lots.models import Lot
from eppark.records.errors import Refused
from eppark.stays.models import Stay
from tests.integration.factories import staff
from tests.integration.test_gate_loop import Site

pytestmark = pytest.mark.django_db

KEY, SECRET = "k-cc-test", "cc-secret"
PHONES = {"entry": "14400000001", "exit": "14400000002"}


class Desk:
    """A Site whose robots have SIM numbers, a call centre, and an agent with a seat."""

    def __init__(self, *, confirm: bool = True) -> None:
        self.site = Site(confirm=confirm)
        for direction, phone in PHONES.items():
            Robot.objects.filter(pk=self.site.robots[direction].pk).update(phone=phone)
        self.centre = CallCentre.objects.create(
            provider="generic",
            name="呼叫中心",
            key_digest=key_digest(KEY),
            key_hint=key_hint(KEY),
            secret=SECRET,
        )
        self.agent = staff("kf-a", Role.AGENT, [self.site.lot])
        self.seat = self.agent.seat.number
        self.calls = 0

    def event(self, event: str, call_id: str, caller: str, **extra: Any) -> Any:
        body = json.dumps(
            {
                "event": event,
                "call_id": call_id,
                "caller": caller,
                "callee": "4001506888",
                "seat": extra.pop("seat", self.seat),
                "at": timezone.now().isoformat(),
                **extra,
            }
        ).encode()
        return Client().post(
            f"/cti/generic/{KEY}",
            data=body,
            content_type="application/json",
            headers={"X-EPPark-Signature": signature(SECRET, body)},
        )

    def call(self, direction: str) -> Call:
        """The robot at ``direction`` calls; the agent answers."""
        self.calls += 1
        call_id = f"call-{self.calls}"
        assert self.event("ringing", call_id, PHONES[direction]).status_code == 200
        assert self.event("answered", call_id, PHONES[direction]).status_code == 200
        return Call.objects.get(call_id=call_id)

    def robot_got(self, direction: str) -> list[Command]:
        return list(
            Command.objects.filter(robot=self.site.robots[direction]).order_by("created_at", "pk")
        )

    def last_present(self, direction: str) -> dict[str, Any]:
        presents = [c for c in self.robot_got(direction) if c.cmd == "present"]
        return dict(presents[-1].args)

    def opens(self, direction: str) -> int:
        """Opens sent to the gate: by its robot's relay or its camera, as the gate is set up."""
        robot, camera = self.site.robots[direction], self.site.cameras[direction]
        return Command.objects.filter(Q(robot=robot) | Q(camera=camera), cmd="open").count()


def shows(args: dict[str, Any]) -> tuple[str | None, str, str]:
    return args.get("voice"), args["display"]["kind"], args["light"]


def test_a_robot_call_pops_with_its_gate_and_car_and_is_locked_to_the_answering_agent() -> None:
    desk = Desk()
    desk.site.push("entry", "粤B88888")  # a stranger where visitors may not enter
    call = desk.call("entry")
    assert (call.robot_id, call.gate_id, call.lot_id) == (
        desk.site.robots["entry"].pk,
        desk.site.gates["entry"].pk,
        desk.site.lot.pk,
    )
    assert call.plate == "粤B88888"
    assert call.state == CallState.ANSWERED
    assert call.agent_id == desk.agent.pk
    other = staff("kf-b", Role.AGENT, [desk.site.lot])
    with pytest.raises(cases.Forbidden):
        cases.open_gate(call, other)  # another agent sees it as taken


def test_a_seat_whose_agent_does_not_serve_the_lot_never_gets_the_call() -> None:
    desk = Desk()
    elsewhere = Lot.objects.create(code="other", name="别处", capacity=10)
    outsider = staff("kf-x", Role.AGENT, [elsewhere])
    assert desk.event("ringing", "c-x", PHONES["entry"], seat=outsider.seat.number).status_code == (
        200
    )
    call = Call.objects.get(call_id="c-x")
    assert call.agent_id is None
    assert not cases.may_see(outsider, call)
    with pytest.raises(cases.Forbidden):
        cases.take(call, outsider)


def test_a_repeated_event_changes_nothing_and_a_bad_one_is_refused() -> None:
    desk = Desk()
    desk.call("entry")
    desk.event("ringing", "call-1", PHONES["entry"])
    assert Call.objects.count() == 1
    assert desk.event("bogus", "call-9", PHONES["entry"]).status_code == 400
    bad = Client().post(
        f"/cti/generic/{KEY}", data=b"{}", content_type="application/json"
    )  # unsigned
    assert bad.status_code == 401
    assert Client().post("/cti/generic/wrong", data=b"{}", content_type="x").status_code == 404
    assert Call.objects.count() == 1


def test_b1_corrected_plate_of_a_valid_pass_is_let_in_and_welcomed_home() -> None:
    desk = Desk()
    desk.site.give_pass("粤B12345")
    desk.site.push("entry", "粤B12346")  # misread: a stranger, refused
    call = desk.call("entry")
    cases.query(call, desk.agent, "粤B12345")
    call.refresh_from_db()
    assert cases.situation(call, timezone.now()).case.scenario == "entry.monthly_valid"
    cases.open_gate(call, desk.agent)
    assert shows(desk.last_present("entry")) == ("欢迎回家", "face", "green")
    assert desk.opens("entry") == 1
    stay = Stay.objects.get(plate="粤B12345")
    assert stay.entered_as == "pass"
    actions = list(AgentAction.objects.order_by("pk").values_list("action", flat=True))
    assert actions == ["query", "open"]
    audit = AgentAction.objects.get(action="open")
    assert audit.before["plate"] == "粤B12345"
    assert audit.after["opened"] is True


def test_b2_expired_pass_within_three_days_opens_beyond_it_gets_the_renewal_code() -> None:
    desk = Desk()
    desk.site.give_pass("粤B20001", days=-2)
    desk.site.give_pass("粤B20002", days=-5)
    desk.site.push("entry", "粤B20001")
    call = desk.call("entry")
    cases.open_gate(call, desk.agent)
    assert shows(desk.last_present("entry")) == ("欢迎回家", "face", "green")
    assert Stay.objects.get(plate="粤B20001").entered_as == "temp"  # 临停进场
    cases.close(call, desk.agent)
    desk.site.push("entry", "粤B20002")
    call = desk.call("entry")
    with pytest.raises(Refused):
        cases.open_gate(call, desk.agent)
    cases.send_to_display(call, desk.agent)
    args = desk.last_present("entry")
    assert shows(args) == ("您的月卡已过期，请扫码缴费后进场", "qr", "green")
    assert "/q/" in args["display"]["qr"]


def test_b3_unplated_gets_its_code_and_a_special_vehicle_is_opened_with_a_log() -> None:
    desk = Desk()
    desk.site.push("entry", None)
    call = desk.call("entry")
    cases.send_to_display(call, desk.agent)
    assert shows(desk.last_present("entry")) == (
        "您的车牌无法识别，请扫码后开闸进场，出场前请在出口处扫码出场",
        "qr",
        "green",
    )
    with pytest.raises(Refused):
        cases.abnormal_open(call, desk.agent, "special_vehicle", "", [], [])  # a note is required
    record = cases.abnormal_open(
        call, desk.agent, "special_vehicle", "警车粤BXXXXX，XX警官进出", [], []
    )
    assert desk.opens("entry") == 1
    assert (record.gate_id, record.agent_id, record.reason) == (
        desk.site.gates["entry"].pk,
        desk.agent.pk,
        "special_vehicle",
    )
    assert record.visit is not None
    assert record.visit.resolution == "abnormal_open"


def test_b4_visitor_release_needs_phone_and_reason_and_welcomes() -> None:
    desk = Desk()
    desk.site.push("entry", "粤B40004")
    call = desk.call("entry")
    with pytest.raises(Refused):
        cases.visitor_release(call, desk.agent, "123", "业主客人")
    cases.visitor_release(call, desk.agent, "13912345678", "1单元303业主客人，业主已确认放行")
    assert shows(desk.last_present("entry")) == ("欢迎光临", "face", "green")
    assert desk.opens("entry") == 1
    audit = AgentAction.objects.get(action="visitor_release")
    assert audit.detail == {"phone": "13912345678", "reason": "1单元303业主客人，业主已确认放行"}


def test_b5_shared_spaces_full_let_in_as_temp_or_shown_the_group() -> None:
    desk = Desk()
    desk.site.give_pass("粤B50001", "粤B50002", spaces=1)
    desk.site.push("entry", "粤B50001")  # takes the one space
    desk.site.push("entry", "粤B50002")
    call = desk.call("entry")
    cases.send_to_display(call, desk.agent)
    args = desk.last_present("entry")
    assert shows(args) == (
        "您的共享车位已满，该车场不允许临停车辆进场，有需请联系管理处",
        "vehicles",
        "yellow",
    )
    assert [v["plate"] for v in args["display"]["vehicles"]] == ["粤B50001"]
    cases.open_gate(call, desk.agent)
    assert shows(desk.last_present("entry")) == ("欢迎光临", "face", "green")
    assert Stay.objects.get(plate="粤B50002").entered_as == "temp"


def _inside(desk: Desk, plate: str, minutes: int = 90) -> Stay:
    return Stay.objects.create(
        lot=desk.site.lot,
        plate=plate,
        entered_as="temp",
        state="inside",
        entered_at=timezone.now() - timedelta(minutes=minutes),
    )


def test_c1_corrected_plate_of_a_pass_holder_leaves() -> None:
    desk = Desk()
    desk.site.give_pass("粤B61001")
    Stay.objects.create(
        lot=desk.site.lot,
        plate="粤B61001",
        entered_as="pass",
        state="inside",
        entered_at=timezone.now() - timedelta(hours=2),
    )
    desk.site.push("exit", "粤B61007")
    call = desk.call("exit")
    cases.query(call, desk.agent, "粤B61001")
    cases.open_gate(call, desk.agent)
    assert shows(desk.last_present("exit")) == ("一路平安", "face", "green")
    assert Stay.objects.get(plate="粤B61001").exited_at is not None


def test_c2_expired_pass_renews_or_pays_as_temp() -> None:
    desk = Desk()
    desk.site.give_pass("粤B62002", days=-5)
    Stay.objects.create(
        lot=desk.site.lot,
        plate="粤B62002",
        entered_as="pass",
        state="inside",
        entered_at=timezone.now() - timedelta(days=6),
    )
    desk.site.push("exit", "粤B62002")
    call = desk.call("exit")
    cases.send_to_display(call, desk.agent)
    assert shows(desk.last_present("exit")) == ("您的月卡已过期，请扫码缴费后出场", "qr", "green")
    cases.quick_pay(call, desk.agent)
    assert shows(desk.last_present("exit")) == ("请扫码缴费后出场", "qr", "green")
    assert desk.opens("exit") == 0


def test_c3_c4_unplated_and_unpaid_get_the_quick_pay_screens() -> None:
    desk = Desk()
    desk.site.push("exit", None)
    call = desk.call("exit")
    cases.quick_pay(call, desk.agent)
    assert shows(desk.last_present("exit")) == ("您的车牌无法识别，请扫码付费后出场", "qr", "green")
    cases.close(call, desk.agent)
    _inside(desk, "粤B64004")
    desk.site.push("exit", "粤B64004")
    call = desk.call("exit")
    with pytest.raises(Refused):
        cases.open_gate(call, desk.agent)  # unpaid: not a plain open
    cases.quick_pay(call, desk.agent)
    assert shows(desk.last_present("exit")) == (
        "请扫码缴费或者出示您的微信付款码",
        "face",
        "green",
    )


def test_c3b_an_exit_abnormal_open_needs_id_and_scene_photos() -> None:
    desk = Desk()
    desk.site.push("exit", None)
    call = desk.call("exit")
    with pytest.raises(Refused):
        cases.abnormal_open(call, desk.agent, "special_vehicle", "军车", [], [])
    photos = [
        CapturedPhoto.objects.create(
            call=call,
            lot=desk.site.lot,
            kind=kind,
            file=ContentFile(b"\xff\xd8\xff photo", name="p.jpg"),
            taken_at=timezone.now(),
        )
        for kind in (EvidenceKind.ID_DOCUMENT, EvidenceKind.SCENE)
    ]
    record = cases.abnormal_open(
        call, desk.agent, "special_vehicle", "军车", [photos[0].pk], [photos[1].pk]
    )
    assert sorted(record.evidence.values_list("kind", flat=True)) == ["id", "scene"]
    assert desk.opens("exit") == 1
    assert AbnormalOpen.objects.count() == 1


def test_c5_shared_car_owing_temp_fees_is_asked_to_pay() -> None:
    desk = Desk()
    desk.site.give_pass("粤B65001", "粤B65002", spaces=1)
    _inside(desk, "粤B65001")
    desk.site.push("exit", "粤B65002")  # no entry record yet
    Stay.objects.create(
        lot=desk.site.lot,
        plate="粤B65002",
        entered_as="temp",
        state="inside",
        entered_at=timezone.now() - timedelta(hours=3),
    )
    desk.site.push("exit", "粤B65002", at=timezone.now() + timedelta(seconds=30))
    call = desk.call("exit")
    assert cases.situation(call, timezone.now()).case.scenario == "exit.shared_full_unpaid"
    cases.send_to_display(call, desk.agent)
    assert shows(desk.last_present("exit")) == ("请扫码缴费或者出示您的微信付款码", "face", "green")


def test_c6_no_entry_record_offers_six_look_alikes_and_the_pick_sets_the_fee() -> None:
    desk = Desk()
    for plate in (
        "粤B7OOO1",
        "粤B70001",
        "粤B70007",
        "粤B70071",
        "粤B10001",
        "粤B70081",
        "粤C99999",
    ):
        _inside(desk, plate.replace("O", "0") if plate.startswith("粤B7OOO") else plate)
    desk.site.push("exit", "粤B7000l".replace("l", "1")[:-1] + "9")  # 粤B70009: no entry record
    call = desk.call("exit")
    assert cases.situation(call, timezone.now()).case.scenario == "exit.no_entry_record"
    offered = cases.candidates(call)
    assert len(offered) == 6
    assert "粤C99999" not in [stay.plate for stay in offered]
    with pytest.raises(Refused):
        cases.send_to_display(call, desk.agent)  # pick the entry record first
    chosen = offered[0]
    cases.confirm_vehicle(call, desk.agent, chosen.pk)
    chosen.refresh_from_db()
    assert chosen.plate == "粤B70009"  # the entry record now carries the car's plate
    call.refresh_from_db()
    assert cases.situation(call, timezone.now()).case.scenario == "exit.temp_unpaid"
    cases.send_to_display(call, desk.agent)
    assert shows(desk.last_present("exit")) == ("请扫码缴费或者出示您的微信付款码", "face", "green")


def test_close_ends_the_case_and_nothing_more_can_be_done() -> None:
    desk = Desk()
    desk.site.push("entry", "粤B88888")
    call = desk.call("entry")
    cases.close(call, desk.agent)
    call.refresh_from_db()
    assert call.closed_at is not None
    assert cases.open_calls(desk.agent) == []
    with pytest.raises(Refused):
        cases.open_gate(call, desk.agent)


def test_an_agent_without_a_seat_or_of_another_role_cannot_act() -> None:
    desk = Desk()
    desk.site.push("entry", "粤B88888")
    call = desk.call("entry")
    operator = staff("op-1", Role.OPERATOR, [desk.site.lot])
    with pytest.raises(cases.Forbidden):
        cases.open_gate(call, operator)
    desk.agent.seat.delete()
    agent = User.objects.get(pk=desk.agent.pk)
    with pytest.raises(cases.Forbidden):
        cases.open_gate(call, agent)
    assert desk.opens("entry") == 0


def test_a_hangup_for_a_call_never_seen_is_recorded_but_pops_nowhere() -> None:
    desk = Desk()
    assert desk.event("hangup", "never-rang", PHONES["entry"]).status_code == 200
    call = Call.objects.get(call_id="never-rang")
    assert call.state == CallState.ENDED
    assert call.agent_id is None
    assert cases.open_calls(desk.agent) == []
