"""Real cameras' pushes through the real device ingress: accepted, answered, decided right.

The fixtures are the vendors' own shapes (tests/fixtures/lpr/SOURCES.md); each was
refused before. A camera whose serial is not the provisioned one is acted on, and the
back office gets one device alarm.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from eppark.accounts.models import Role
from eppark.asgi import device_ingress as application
from eppark.asgi import django_application
from eppark.devices import alarms
from eppark.devices.ingress import DeviceIngress
from eppark.devices.lpr.events import HttpPush
from eppark.devices.models import AlarmKind, Camera, Command, CommandState, DeviceAlarm, PlateRead
from eppark.sim.cameras import build_heartbeat, build_push
from eppark.stays.barrier import open_gate
from eppark.stays.models import GateVisit, Stay
from tests.integration.factories import build_lot, staff
from tests.integration.test_device_ingress import Answer, _own_workers, _release, call
from tests.integration.test_gate_loop import Site
from tests.unit.test_lpr_fixtures import load

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ingress(monkeypatch: pytest.MonkeyPatch) -> Iterator[DeviceIngress]:
    """The served ASGI app (``eppark.asgi.device_ingress``) on a worker thread of the test's."""
    pool = _own_workers(application, monkeypatch)
    try:
        yield application
    finally:
        _release(pool)


@pytest.fixture(autouse=True)
def _fresh_alarm_throttle() -> Iterator[None]:
    alarms.forget()
    yield
    alarms.forget()


def provision(site: Site, direction: str, serial: str) -> Camera:
    """The camera at ``direction`` provisioned with the serial the fixture reports."""
    camera = site.cameras[direction]
    camera.serial = serial
    camera.save()
    return camera


def post(app: Any, camera: Camera, message: HttpPush) -> Answer:
    path = f"/devices/lpr/{camera.vendor}/{camera.key}"
    if message.path:
        path += "/" + message.path
    return call(app, "POST", path, message.body, message.content_type)


def robot_commands(site: Site, direction: str) -> list[str]:
    robot = site.robots[direction]
    return list(
        Command.objects.filter(robot=robot).order_by("created_at").values_list("cmd", flat=True)
    )


def test_vzenith_legacy_firmware_read_opens_for_a_pass_once(ingress: DeviceIngress) -> None:
    site = Site()
    site.give_pass("粤B12345")
    camera = provision(site, "entry", "eff50e18-e3d3862b")
    message = load("vzenith", "legacy_plate.json")

    answer = post(ingress, camera, message)
    assert answer.status == 200, answer.body
    assert answer.json() == {
        "Response_AlarmInfoPlate": {"info": "ok", "content": "retransfer_stop"}
    }
    stay = Stay.objects.get(plate="粤B12345")
    assert stay.entered_as == "pass"
    # the camera re-sends the same read (no plateid to stop it): recorded once, same answer
    again = post(ingress, camera, message)
    assert again.status == 200
    assert again.json()["Response_AlarmInfoPlate"]["info"] == "ok"
    assert PlateRead.objects.filter(camera=camera).count() == 1
    assert Stay.objects.filter(plate="粤B12345").count() == 1
    assert not DeviceAlarm.objects.exists()


def test_qianyi_read_of_a_stranger_where_visitors_need_confirmation_stays_shut(
    ingress: DeviceIngress,
) -> None:
    site = Site(confirm=True)
    camera = provision(site, "entry", "3a5c9e71-0b2d44f8")
    answer = post(ingress, camera, load("vzenith", "qianyi_plate.json"))
    assert answer.status == 200, answer.body
    assert answer.json()["Response_AlarmInfoPlate"]["info"] == "no"
    visit = GateVisit.objects.get(plate="粤BD12345")
    assert visit.opened is False


def test_json_heartbeat_is_answered_and_carries_a_queued_open(ingress: DeviceIngress) -> None:
    site = Site()
    camera = provision(site, "exit", "3a5c9e71-0b2d44f8")
    heartbeat = load("vzenith", "heartbeat_json.json")
    answer = post(ingress, camera, heartbeat)
    assert answer.status == 200, answer.body
    assert answer.json() == {"Response_Heartbeat": {"info": "no", "serialData": []}}
    camera.refresh_from_db()
    assert camera.online

    open_gate(site.gates["exit"], timezone.now(), reason="agent")
    answer = post(ingress, camera, load("vzenith", "heartbeat_json_capital.json"))
    assert answer.json() == {"Response_Heartbeat": {"info": "ok", "serialData": []}}
    assert Command.objects.get(camera=camera).state == CommandState.DONE
    assert post(ingress, camera, heartbeat).json()["Response_Heartbeat"]["info"] == "no"


@pytest.mark.parametrize("fixture", ["plate_gb2312.json", "plate_gbk_undeclared.json"])
def test_vzenith_gbk_bodies_open_for_a_pass(ingress: DeviceIngress, fixture: str) -> None:
    site = Site()
    site.give_pass("京A0C8F9", "沪C88888")
    camera = provision(site, "entry", "eff50e18-e3d3862b")
    answer = post(ingress, camera, load("vzenith", fixture))
    assert answer.status == 200, answer.body
    assert answer.json()["Response_AlarmInfoPlate"]["info"] == "ok"
    assert Stay.objects.get().plate in ("京A0C8F9", "沪C88888")


def test_hxzx_raw_utf8_form_opens_for_a_pass(ingress: DeviceIngress) -> None:
    site = Site(vendor="hxzx")
    site.give_pass("粤B54321")
    camera = provision(site, "entry", "HX-0A2B3C")
    answer = post(ingress, camera, load("hxzx", "online_raw_utf8.form"))
    assert answer.status == 200, answer.body
    assert answer.json() == {
        "error_num": 0,
        "error_str": "noerror",
        "gpio_data": [{"ionum": "io1", "action": "on"}],
    }
    assert Stay.objects.get().plate == "粤B54321"


def test_hikvision_old_firmware_alert_opens_for_a_pass(ingress: DeviceIngress) -> None:
    site = Site(vendor="hikvision")
    site.give_pass("粤B12345")
    camera = site.cameras["entry"]  # provisioned with a MAC the alert does not carry
    answer = post(ingress, camera, load("hikvision", "anpr_std_cgi.multipart"))
    assert answer.status == 200, answer.body
    assert answer.body == b""
    stay = Stay.objects.get(plate="粤B12345")
    assert stay.entry_photo.name  # the octet-stream picture is the entry photo
    assert robot_commands(site, "entry") == ["present", "open"]  # no camera API: the relay
    assert not DeviceAlarm.objects.exists()  # nothing named another device


def test_dahua_registration_is_answered_and_records_the_serial(ingress: DeviceIngress) -> None:
    site = Site(vendor="dahua")
    camera = provision(site, "entry", "")
    message = load("dahua", "device_info.json")
    answer = post(ingress, camera, message)
    assert answer.status == 200, answer.body
    assert answer.json() == {"Result": True}
    camera.refresh_from_db()
    assert camera.serial == "6J0B4A1PAZ4F7C3"
    assert camera.online
    assert not GateVisit.objects.exists()
    assert not DeviceAlarm.objects.exists()

    # from now on a read from another Dahua camera on this key raises an alarm
    site.give_pass("粤B12345")
    read = build_push("dahua", "OTHER-SN", "粤B12345", timezone.now(), plate_id=1)
    assert post(ingress, camera, read).status == 200
    assert robot_commands(site, "entry") == ["present", "open"]
    assert DeviceAlarm.objects.get().detail == "provisioned 6J0B4A1PAZ4F7C3, reported OTHER-SN"


def test_dahua_registration_from_another_camera_raises_an_alarm(ingress: DeviceIngress) -> None:
    site = Site(vendor="dahua")
    camera = site.cameras["entry"]  # provisioned as sn-entry
    answer = post(ingress, camera, load("dahua", "device_info.json"))
    assert answer.status == 200
    camera.refresh_from_db()
    assert camera.serial == "sn-entry"  # never overwritten by what a camera claims
    alarm = DeviceAlarm.objects.get()
    assert alarm.detail == "provisioned sn-entry, reported 6J0B4A1PAZ4F7C3 (ITC237-PW6M-IRLZF)"


def test_a_replaced_camera_still_opens_for_a_pass_and_raises_one_alarm(
    ingress: DeviceIngress,
) -> None:
    site = Site()
    site.give_pass("粤B12345")
    site.give_pass("粤B22222")
    camera = site.cameras["entry"]
    for n, plate in enumerate(("粤B12345", "粤B22222")):
        message = build_push("vzenith", "replaced-cam", plate, timezone.now(), plate_id=n + 1)
        answer = post(ingress, camera, message)
        assert answer.status == 200, answer.body
        assert answer.json()["Response_AlarmInfoPlate"]["info"] == "ok"  # the gate opens
    assert Stay.objects.filter(entered_as="pass").count() == 2
    heartbeat = build_heartbeat("vzenith", "replaced-cam")
    assert post(ingress, camera, heartbeat).status == 200

    alarm = DeviceAlarm.objects.get()  # once, however often the camera posts
    assert (alarm.kind, alarm.camera_id, alarm.lot_id) == (
        AlarmKind.SERIAL_MISMATCH,
        camera.pk,
        site.lot.pk,
    )
    assert alarm.detail == "provisioned sn-entry, reported replaced-cam"
    assert alarm.acknowledged is False
    assert alarm.first_seen_at <= alarm.last_seen_at


def test_the_same_serial_written_otherwise_raises_nothing(ingress: DeviceIngress) -> None:
    site = Site(vendor="hikvision")
    camera = provision(site, "entry", "BC-BA-C2-5A-31-7E")
    site.give_pass("粤B12345")
    answer = post(ingress, camera, load("hikvision", "anpr_device_number.xml"))
    assert answer.status == 200, answer.body
    assert Stay.objects.filter(plate="粤B12345").exists()
    assert not DeviceAlarm.objects.exists()


def test_an_open_alarm_is_brought_up_to_date_not_repeated() -> None:
    site = Site()
    camera = site.cameras["entry"]
    now = timezone.now()
    first = alarms.raise_alarm(camera.pk, site.lot.pk, AlarmKind.SERIAL_MISMATCH, "a", now)
    later = alarms.raise_alarm(camera.pk, site.lot.pk, AlarmKind.SERIAL_MISMATCH, "b", now, 4)
    assert later.pk == first.pk
    assert (later.count, later.detail) == (5, "b")
    DeviceAlarm.objects.filter(pk=first.pk).update(acknowledged=True)
    again = alarms.raise_alarm(camera.pk, site.lot.pk, AlarmKind.SERIAL_MISMATCH, "c", now)
    assert again.pk != first.pk  # acknowledged: a repeat is a new alarm
    assert DeviceAlarm.objects.count() == 2


def test_malformed_variants_are_400_and_change_nothing(ingress: DeviceIngress) -> None:
    site = Site(confirm=False)
    camera = site.cameras["entry"]
    for body, content_type in (
        (b'{"heartbeat": 5}', "application/json"),
        (
            b'{"AlarmInfoPlate": {"serialno": "x", "result": {"PlateResult": {"license": 5}}}}',
            "application/json",
        ),
        (b'{"AlarmInfoPlate": {"license": "\xff\xfe"}}', "application/json"),
        (b"{}", "application/json; charset=klingon"),
    ):
        answer = call(ingress, "POST", f"/devices/lpr/vzenith/{camera.key}", body, content_type)
        assert answer.status == 400, body
        assert set(answer.json()) == {"error"}
    answer = call(
        ingress,
        "POST",
        f"/devices/lpr/vzenith/{camera.key}/NotificationInfo/DeviceInfo",
        b"{}",
        "application/json",
    )
    assert answer.status == 404  # a Dahua path under another vendor
    assert not PlateRead.objects.exists()
    assert not GateVisit.objects.exists()
    assert not DeviceAlarm.objects.exists()


def test_a_malformed_dahua_registration_is_400_and_records_nothing(
    ingress: DeviceIngress,
) -> None:
    site = Site(vendor="dahua")
    camera = provision(site, "entry", "")
    path = f"/devices/lpr/dahua/{camera.key}/NotificationInfo/DeviceInfo"
    for body in (b"{}", b'{"DeviceID": 5}', b"[]", b"not json"):
        answer = call(ingress, "POST", path, body, "application/json")
        assert answer.status == 400, body
        assert set(answer.json()) == {"error"}
        by_view = call(django_application, "POST", path, body, "application/json")
        assert (by_view.status, by_view.body) == (answer.status, answer.body)  # the URL is routed
    camera.refresh_from_db()
    assert camera.serial == ""
    assert not DeviceAlarm.objects.exists()


def test_device_alarms_in_the_back_office_read_only_with_acknowledge() -> None:
    site = Site()
    camera = site.cameras["entry"]
    alarm = alarms.raise_alarm(
        camera.pk,
        site.lot.pk,
        AlarmKind.SERIAL_MISMATCH,
        "provisioned sn-entry, reported x",
        timezone.now(),
    )
    boss = User.objects.create_superuser("boss", password="pw")
    client = Client()
    client.force_login(boss)
    page = client.get("/admin/devices/devicealarm/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "序列号与登记的不符" in text  # the kind in words, in Chinese
    assert ">serial_mismatch<" not in text  # never the raw code (filter links carry it)
    assert client.get(f"/admin/devices/devicealarm/{alarm.pk}/change/").status_code == 200
    assert client.get("/admin/devices/devicealarm/add/").status_code == 403
    changed = client.post(
        f"/admin/devices/devicealarm/{alarm.pk}/change/", {"detail": "nothing to see"}
    )
    assert changed.status_code == 403
    done = client.post(
        "/admin/devices/devicealarm/",
        {"action": "acknowledge", "_selected_action": [str(alarm.pk)]},
    )
    assert done.status_code == 302
    alarm.refresh_from_db()
    assert alarm.acknowledged
    assert alarm.acknowledged_by == boss
    assert alarm.detail == "provisioned sn-entry, reported x"
    assert client.post(f"/admin/devices/devicealarm/{alarm.pk}/delete/").status_code == 403


def test_an_operator_sees_and_acknowledges_only_the_alarms_of_their_lots() -> None:
    root = User.objects.create_superuser("root", password="pw-not-used")
    a = build_lot("caike", "彩科彩悦大厦", "粤B11111", root)
    b = build_lot("futian", "福田中心", "粤B99999", root)
    now = timezone.now()
    alarm_a = alarms.raise_alarm(
        a.camera.pk, a.lot.pk, AlarmKind.SERIAL_MISMATCH, "reported CAM-OF-A", now
    )
    alarm_b = alarms.raise_alarm(
        b.camera.pk, b.lot.pk, AlarmKind.SERIAL_MISMATCH, "reported CAM-OF-B", now
    )
    operator = Client()
    operator.force_login(staff("op-caike", Role.OPERATOR, [a.lot]))
    page = operator.get("/admin/devices/devicealarm/").content.decode()
    assert "CAM-OF-A" in page
    assert "CAM-OF-B" not in page
    assert "福田中心" not in page
    assert operator.get(f"/admin/devices/devicealarm/{alarm_b.pk}/change/").status_code in (
        302,
        403,
        404,
    )
    operator.post(
        "/admin/devices/devicealarm/",
        {"action": "acknowledge", "_selected_action": [str(alarm_a.pk), str(alarm_b.pk)]},
    )
    alarm_a.refresh_from_db()
    alarm_b.refresh_from_db()
    assert alarm_a.acknowledged
    assert not alarm_b.acknowledged  # another lot's alarm is out of reach

    agent = Client()
    agent.force_login(staff("kf-001", Role.AGENT, [a.lot]))
    assert agent.get("/admin/devices/devicealarm/").status_code == 403
