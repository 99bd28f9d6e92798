"""The live gate loop through the real device endpoints, with vendor-shaped payloads."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from eppark.devices.lpr.events import HttpPush
from eppark.devices.models import Camera, Command, CommandState, PlateRead, Robot
from eppark.lots.models import Gate, Lot
from eppark.orders.models import Order
from eppark.passes.models import MonthlyPass, PassPlate
from eppark.sim.cameras import build_heartbeat, build_push
from eppark.stays.barrier import open_gate
from eppark.stays.models import GateVisit, Resolution, Stay, StayState
from tests.integration.factories import TARIFF, keyed_camera

pytestmark = pytest.mark.django_db


class Site:
    """A lot with an entry and an exit gate, each with a robot and a plate camera."""

    def __init__(self, *, confirm: bool = True, vendor: str = "vzenith") -> None:
        self.lot = Lot.objects.create(
            code="caike", name="彩科", capacity=100, tariff=TARIFF, temp_entry_confirmation=confirm
        )
        self.gates: dict[str, Gate] = {}
        self.cameras: dict[str, Camera] = {}
        self.robots: dict[str, Robot] = {}
        for direction in ("entry", "exit"):
            gate = Gate.objects.create(
                lot=self.lot, code=f"{direction}-1", name=direction, direction=direction
            )
            robot = Robot.objects.create(
                code=f"EP-{direction}", name=direction, lot=self.lot, gate=gate
            )
            camera = keyed_camera(
                f"k-{direction}",
                vendor=vendor,
                lot=self.lot,
                gate=gate,
                robot=robot,
                serial=f"sn-{direction}",
            )
            self.gates[direction], self.robots[direction] = gate, robot
            self.cameras[direction] = camera
        self.client = Client()
        self.plate_id = 1000

    def give_pass(self, *plates: str, days: float = 30, spaces: int = 1) -> MonthlyPass:
        now = timezone.now()
        monthly = MonthlyPass.objects.create(
            lot=self.lot,
            owner="李四",
            phone="13800000000",
            valid_from=now - timedelta(days=60),
            valid_until=now + timedelta(days=days),
            spaces=spaces,
        )
        for plate in plates:
            PassPlate.objects.create(monthly_pass=monthly, lot=self.lot, plate=plate)
        return monthly

    def push(
        self,
        direction: str,
        plate: str | None,
        *,
        plate_id: int | None = None,
        offline: bool = False,
        at: datetime | None = None,
        key: str | None = None,
    ) -> Any:
        camera = self.cameras[direction]
        if plate_id is None:
            self.plate_id += 1
            plate_id = self.plate_id
        message = build_push(
            camera.vendor,  # type: ignore[arg-type]
            camera.serial,
            plate,
            at or timezone.now(),
            plate_id=plate_id,
            offline=offline,
        )
        return self.post(camera, message, key=key)

    def post(self, camera: Camera, message: HttpPush, key: str | None = None) -> Any:
        url = f"/devices/lpr/{camera.vendor}/{key or camera.key}"
        if message.path:
            url += "/" + message.path
        return self.client.post(url, data=message.body, content_type=message.content_type)


def opened(response: Any) -> bool:
    body = json.loads(response.content)["Response_AlarmInfoPlate"]
    return bool(body.get("info") == "ok")


def commands(robot: Robot) -> list[Command]:
    return list(Command.objects.filter(robot=robot).order_by("created_at"))


def test_valid_pass_enters_the_camera_opens_and_the_robot_welcomes() -> None:
    site = Site()
    site.give_pass("粤B12345")
    response = site.push("entry", "粤B12345")
    assert response.status_code == 200
    assert opened(response)
    stay = Stay.objects.get(plate="粤B12345")
    assert stay.entered_as == "pass"
    assert stay.entry_photo.name  # the camera's image is the entry photo
    visit = GateVisit.objects.get()
    assert (visit.scenario, visit.opened, visit.resolution) == (
        "entry.monthly_valid",
        True,
        Resolution.OPENED,
    )
    [present] = commands(site.robots["entry"])
    assert present.cmd == "present"
    assert present.state == CommandState.PENDING
    assert present.args == {
        "voice": "欢迎回家",
        "display": {"kind": "face", "face": "smile"},
        "light": "green",
    }


def test_stranger_is_refused_where_visitors_may_not_enter() -> None:
    site = Site(confirm=True)
    response = site.push("entry", "粤B88888")
    assert not opened(response)
    assert not Stay.objects.exists()
    visit = GateVisit.objects.get()
    assert visit.scenario == "entry.temp_forbidden"
    assert visit.expected_action == "leave"
    assert visit.resolved_at is None
    [present] = commands(site.robots["entry"])
    assert present.args["display"] == {"kind": "text", "text": "该车场禁止临停"}
    assert present.args["light"] == "yellow"


def test_temp_car_pays_nothing_inside_the_free_period_and_leaves() -> None:
    site = Site(confirm=False)
    assert opened(site.push("entry", "粤B88888"))
    response = site.push("exit", "粤B88888")
    assert opened(response)
    stay = Stay.objects.get()
    assert stay.state == StayState.LEFT
    assert stay.exit_gate == site.gates["exit"]
    assert GateVisit.objects.filter(scenario="exit.temp_paid").count() == 1


def test_temp_car_owing_gets_the_quick_pay_qr_and_the_gate_stays_shut() -> None:
    site = Site(confirm=False)
    Stay.objects.create(
        lot=site.lot,
        plate="粤B88888",
        entered_as="temp",
        entered_at=timezone.now() - timedelta(hours=3),
        entry_gate=site.gates["entry"],
    )
    response = site.push("exit", "粤B88888")
    assert not opened(response)
    visit = GateVisit.objects.get()
    assert visit.scenario == "exit.temp_unpaid"
    assert visit.expected_action == "temp_order"
    [present] = commands(site.robots["exit"])
    assert present.args["voice"] == "请扫码缴费后出场"
    assert present.args["display"]["kind"] == "qr"
    assert "/q/" in present.args["display"]["qr"]
    assert Stay.objects.get().exited_at is None


def test_paid_stay_within_the_exit_grace_leaves() -> None:
    site = Site(confirm=False)
    entered = timezone.now() - timedelta(hours=3)
    stay = Stay.objects.create(
        lot=site.lot,
        plate="粤B88888",
        entered_as="temp",
        entered_at=entered,
        entry_gate=site.gates["entry"],
    )
    Order.objects.create(
        kind="temp",
        lot=site.lot,
        plate="粤B88888",
        stay=stay,
        amount=1100,
        state="paid",
        paid_at=timezone.now() - timedelta(minutes=5),
        out_trade_no="T1",
    )
    assert opened(site.push("exit", "粤B88888"))
    stay.refresh_from_db()
    assert (stay.total, stay.paid) == (1100, 1100)


def test_unplated_car_gets_the_gates_unplated_qr() -> None:
    site = Site()
    response = site.push("entry", None)
    assert not opened(response)
    visit = GateVisit.objects.get()
    assert visit.scenario == "entry.unplated"
    assert visit.plate == ""
    [present] = commands(site.robots["entry"])
    assert present.args["display"]["kind"] == "qr"


def test_shared_spaces_full_shows_the_groups_cars_inside() -> None:
    site = Site(confirm=True)
    site.give_pass("粤B11111", "粤B22222", spaces=1)
    assert opened(site.push("entry", "粤B11111"))
    response = site.push("entry", "粤B22222")
    assert not opened(response)
    assert GateVisit.objects.filter(scenario="entry.shared_full").count() == 1
    present = commands(site.robots["entry"])[-1]
    vehicles = present.args["display"]["vehicles"]
    assert [v["plate"] for v in vehicles] == ["粤B11111"]
    assert vehicles[0]["photo_url"]


def test_the_same_read_twice_is_one_visit_with_the_same_answer() -> None:
    site = Site()
    site.give_pass("粤B12345")
    first = site.push("entry", "粤B12345", plate_id=77)
    again = site.push("entry", "粤B12345", plate_id=77)
    assert opened(first)
    assert opened(again)
    assert PlateRead.objects.count() == 1
    assert GateVisit.objects.count() == 1
    assert Stay.objects.count() == 1
    assert len(commands(site.robots["entry"])) == 1


def test_a_re_read_of_the_same_plate_within_the_window_is_the_same_visit() -> None:
    site = Site()
    site.push("entry", "粤B88888")
    site.push("entry", "粤B88888")
    assert PlateRead.objects.count() == 2
    assert GateVisit.objects.count() == 1


def test_a_new_car_supersedes_the_waiting_one() -> None:
    site = Site()
    site.push("entry", "粤B88888")
    site.push("entry", "粤B66666")
    first = GateVisit.objects.get(plate="粤B88888")
    assert first.resolution == Resolution.SUPERSEDED


def test_offline_backlog_keeps_the_stays_and_commands_nothing() -> None:
    site = Site()
    at = timezone.now() - timedelta(hours=2)
    response = site.push("entry", "粤B88888", offline=True, at=at)
    assert response.status_code == 200
    body = json.loads(response.content)["Response_AlarmInfoPlate"]
    assert body["ContinuePushOffline"]["continue"] == 1
    stay = Stay.objects.get()
    assert abs((stay.entered_at - at).total_seconds()) < 1
    assert not GateVisit.objects.exists()
    assert not Command.objects.exists()


def test_wrong_key_is_404_and_changes_nothing() -> None:
    site = Site()
    response = site.push("entry", "粤B12345", key="not-the-key")
    assert response.status_code == 404
    assert not PlateRead.objects.exists()
    assert not GateVisit.objects.exists()
    response = site.client.post(
        "/devices/lpr/hikvision/k-entry", data=b"x", content_type="text/plain"
    )  # right key, wrong vendor
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b'{"AlarmInfoPlate": 5}',
        b"[]",
        b'{"AlarmInfoPlate":{"result":{"PlateResult":{}}}}',
    ],
)
def test_malformed_payload_is_400_changes_nothing_and_never_opens(body: bytes) -> None:
    site = Site()
    response = site.client.post(
        "/devices/lpr/vzenith/k-entry", data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "error" in json.loads(response.content)
    assert b'"ok"' not in response.content
    assert not PlateRead.objects.exists()
    assert not Command.objects.exists()


def test_a_camera_not_linked_to_a_gate_is_refused() -> None:
    site = Site()
    camera = site.cameras["entry"]
    camera.gate = None
    camera.save()
    response = site.push("entry", "粤B12345")
    assert response.status_code == 409


def test_heartbeat_marks_the_camera_online_and_carries_a_queued_open() -> None:
    site = Site()
    camera = site.cameras["exit"]
    response = site.post(camera, build_heartbeat("vzenith", camera.serial))
    assert response.status_code == 200
    camera.refresh_from_db()
    assert camera.online
    assert camera.last_heartbeat_at
    assert not opened(response)
    agent = User.objects.create_user("kf")
    open_gate(site.gates["exit"], timezone.now(), reason="agent", by=agent)
    response = site.post(camera, build_heartbeat("vzenith", camera.serial))
    assert opened(response)
    command = Command.objects.get(camera=camera)
    assert command.state == CommandState.DONE
    assert command.requested_by == agent
    assert not opened(site.post(camera, build_heartbeat("vzenith", camera.serial)))


def test_an_expired_queued_open_is_never_carried_out() -> None:
    site = Site()
    camera = site.cameras["exit"]
    open_gate(site.gates["exit"], timezone.now() - timedelta(minutes=5), reason="agent")
    assert not opened(site.post(camera, build_heartbeat("vzenith", camera.serial)))
    assert Command.objects.get(camera=camera).state == CommandState.EXPIRED


@pytest.mark.parametrize("vendor", ["hxzx", "hikvision", "dahua"])
def test_every_vendor_runs_the_same_loop(vendor: str) -> None:
    site = Site(vendor=vendor)
    site.give_pass("粤B12345")
    response = site.push("entry", "粤B12345")
    assert response.status_code == 200, response.content
    assert Stay.objects.filter(plate="粤B12345").exists()
    kinds = [c.cmd for c in commands(site.robots["entry"])]
    if vendor == "hxzx":  # opens through its reply
        assert json.loads(response.content)["gpio_data"][0]["action"] == "on"
        assert kinds == ["present"]
    else:  # no camera API configured: the robot's relay opens
        assert kinds == ["present", "open"]


def test_open_gate_uses_the_robot_relay_when_configured() -> None:
    site = Site()
    gate = site.gates["exit"]
    gate.opening_channel = "robot"
    gate.save()
    open_gate(gate, timezone.now(), reason="payment")
    [command] = Command.objects.filter(cmd="open")
    assert command.robot == site.robots["exit"]
    assert command.channel == "mqtt"
    assert (command.expires_at - command.created_at).total_seconds() <= 10
