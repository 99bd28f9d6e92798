"""Robots can be put into service and device secrets stay secret (issue 9, items 2 and 4).

A robot gets its MQTT password from ``eppark robot-password`` or the back office's
"set a new MQTT password": shown once, stored as its hash, audited. A camera's
endpoint key is stored as its digest, shown masked, replaced by an audited
"set a new endpoint key"; its API password is write-only. Robot codes that cannot be
an MQTT topic level are refused wherever they are entered.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from eppark.accounts.models import Role
from eppark.devices import registry
from eppark.devices.credentials import verify_password
from eppark.devices.keys import key_digest
from eppark.devices.models import Camera, Robot
from eppark.sim.cameras import build_heartbeat
from tests.integration.factories import LotWorld, build_lot, staff

pytestmark = pytest.mark.django_db

API_PASSWORD = "cam-api-Secret-42"


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    root = User.objects.create_superuser("root", password="pw-not-used")
    a = build_lot("caike", "彩科彩悦大厦", "粤B11111", root)
    b = build_lot("futian", "福田中心", "粤B99999", root)
    Camera.objects.filter(pk=a.camera.pk).update(
        api_url="http://192.168.1.64", api_username="admin", api_password=API_PASSWORD
    )
    registry.forget()
    users = {
        "agent": staff("kf-001", Role.AGENT, [a.lot]),
        "operator": staff("op-caike", Role.OPERATOR, [a.lot]),
        "operator_b": staff("op-futian", Role.OPERATOR, [b.lot]),
        "superuser": root,
    }
    return {"a": a, "b": b, "users": users}


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- robot codes -------------------------------------------------------------------------------


BAD_CODES = ["出口 1", "EP 0001", "EP/0001", "EP+1", "EP#1", "gateway", "-EP", "E" * 65]


def _robot_form(world: dict[str, Any], code: str) -> dict[str, Any]:
    a: LotWorld = world["a"]
    return {
        "code": code,
        "name": "出口1",
        "lot": a.lot.pk,
        "gate": "",
        "phone": "",
        "cameras-TOTAL_FORMS": "0",
        "cameras-INITIAL_FORMS": "0",
        "cameras-MIN_NUM_FORMS": "0",
        "cameras-MAX_NUM_FORMS": "1000",
    }


@pytest.mark.parametrize("code", BAD_CODES)
def test_the_admin_refuses_a_robot_code_that_cannot_be_a_topic_level(
    world: dict[str, Any], code: str
) -> None:
    client = client_for(world["users"]["superuser"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    before = Robot.objects.count()
    response = client.post(reverse("admin:devices_robot_add"), _robot_form(world, code))
    assert response.status_code == 200  # the form again, with the error
    body = response.content.decode()
    expected = "at most 64 characters" if len(code) > 64 else "cannot be a robot code"
    assert expected in body
    assert 'class="errorlist' in body
    assert Robot.objects.count() == before


def test_the_admin_refuses_renaming_a_robot_to_a_bad_code(world: dict[str, Any]) -> None:
    a: LotWorld = world["a"]
    client = client_for(world["users"]["superuser"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    form = {**_robot_form(world, "出口 1"), "gate": a.exit.pk, "phone": a.robot.phone}
    response = client.post(reverse("admin:devices_robot_change", args=[a.robot.pk]), form)
    assert response.status_code == 200
    assert "cannot be a robot code" in response.content.decode()
    assert Robot.objects.get(pk=a.robot.pk).code == a.robot.code


def test_the_admin_takes_a_good_robot_code(world: dict[str, Any]) -> None:
    client = client_for(world["users"]["superuser"])
    response = client.post(reverse("admin:devices_robot_add"), _robot_form(world, "EP-0042"))
    assert response.status_code == 302
    assert Robot.objects.filter(code="EP-0042").exists()


# --- robot passwords ---------------------------------------------------------------------------


def test_robot_password_prints_a_fresh_password_once_and_stores_its_hash(
    world: dict[str, Any],
) -> None:
    robot: Robot = world["a"].robot
    out = io.StringIO()
    call_command("robot_password", robot.code, stdout=out)
    password = out.getvalue().strip()
    assert out.getvalue().count("\n") == 1
    assert len(password) >= 24
    stored = Robot.objects.get(pk=robot.pk).mqtt_password_hash
    assert stored.startswith("$7$")
    assert password not in stored
    assert verify_password(password, stored)
    again = io.StringIO()
    call_command("robot_password", robot.code, stdout=again)
    assert again.getvalue().strip() != password
    assert not verify_password(password, Robot.objects.get(pk=robot.pk).mqtt_password_hash)
    latest = Robot.history.filter(id=robot.pk).latest()
    assert latest.history_change_reason == "MQTT password reset (command line)"
    assert latest.history_user is None
    assert not hasattr(latest, "mqtt_password_hash")


def test_robot_password_for_an_unknown_robot_fails_with_exit_2(world: dict[str, Any]) -> None:
    with pytest.raises(CommandError) as caught:
        call_command("robot_password", "EP-nope", stdout=io.StringIO())
    assert caught.value.returncode == 2
    assert str(caught.value) == "no robot with code 'EP-nope'"


def test_the_back_office_sets_a_new_mqtt_password_shown_once_and_audited(
    world: dict[str, Any],
) -> None:
    robot: Robot = world["a"].robot
    operator = world["users"]["operator"]
    client = client_for(operator)
    change = client.get(reverse("admin:devices_robot_change", args=[robot.pk])).content.decode()
    url = reverse("admin:devices_robot_mqtt_password", args=[robot.pk])
    assert url in change
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert Robot.objects.get(pk=robot.pk).mqtt_password_hash == ""  # asking changes nothing
    shown = client.post(url)
    assert shown.status_code == 200
    assert "no-store" in shown["Cache-Control"]
    password = re.search(r'id="new-secret"[^>]*>([^<]+)<', shown.content.decode())
    assert password is not None
    stored = Robot.objects.get(pk=robot.pk).mqtt_password_hash
    assert verify_password(password.group(1), stored)
    for page in (
        reverse("admin:devices_robot_change", args=[robot.pk]),
        reverse("admin:devices_robot_history", args=[robot.pk]),
        reverse("admin:devices_robot_changelist"),
        url,
    ):
        body = client.get(page).content.decode()
        assert password.group(1) not in body
        assert stored not in body
    latest = Robot.history.filter(id=robot.pk).latest()
    assert (latest.history_change_reason, latest.history_user) == ("MQTT password reset", operator)
    history = client.get(reverse("admin:devices_robot_history", args=[robot.pk])).content.decode()
    assert "MQTT password reset" in history


@pytest.mark.parametrize(("role", "status"), [("agent", 403), ("operator_b", 404)])
def test_only_staff_who_may_change_the_robot_set_its_password(
    world: dict[str, Any], role: str, status: int
) -> None:
    robot: Robot = world["a"].robot
    client = client_for(world["users"][role])
    url = reverse("admin:devices_robot_mqtt_password", args=[robot.pk])
    assert client.post(url).status_code in (status, 302)
    assert Robot.objects.get(pk=robot.pk).mqtt_password_hash == ""


# --- camera keys and API passwords -------------------------------------------------------------


def push(client: Client, camera: Camera, key: str) -> int:
    message = build_heartbeat("vzenith", camera.serial)
    url = f"/devices/lpr/{camera.vendor}/{key}"
    if message.path:
        url += "/" + message.path
    return client.post(url, data=message.body, content_type=message.content_type).status_code


def test_a_cameras_key_and_api_password_are_shown_to_no_one(world: dict[str, Any]) -> None:
    a: LotWorld = world["a"]
    stored = Camera.objects.get(pk=a.camera.pk)
    assert stored.key is None
    assert stored.key_digest == key_digest("k-caike")
    for role in ("agent", "operator", "superuser"):
        client = client_for(world["users"][role])
        for page in (
            reverse("admin:devices_camera_changelist"),
            reverse("admin:devices_camera_change", args=[a.camera.pk]),
            reverse("admin:devices_camera_history", args=[a.camera.pk]),
            reverse("admin:devices_robot_change", args=[a.robot.pk]),
            reverse("console:city_json"),
            reverse("console:robot_state", args=[a.robot.code]),
        ):
            body = client.get(page).content.decode()
            for secret in ("k-caike", API_PASSWORD, stored.key_digest):
                assert secret not in body, f"{role} sees {secret!r} on {page}"


def _camera_form(camera: Camera, **changes: Any) -> dict[str, Any]:
    form = {
        "vendor": camera.vendor,
        "name": camera.name,
        "lot": camera.lot_id,
        "gate": camera.gate_id or "",
        "robot": camera.robot_id or "",
        "serial": camera.serial,
        "ezviz_serial": camera.ezviz_serial,
        "api_url": camera.api_url,
        "api_username": camera.api_username,
        "api_password": "",
    }
    form.update(changes)
    return form


def test_the_api_password_is_write_only(world: dict[str, Any]) -> None:
    a: LotWorld = world["a"]
    client = client_for(world["users"]["operator"])
    url = reverse("admin:devices_camera_change", args=[a.camera.pk])
    camera = Camera.objects.get(pk=a.camera.pk)
    assert client.post(url, _camera_form(camera, name="出口相机")).status_code == 302
    camera = Camera.objects.get(pk=a.camera.pk)
    assert (camera.name, camera.api_password) == ("出口相机", API_PASSWORD)  # blank kept it
    assert client.post(url, _camera_form(camera, api_password="new-Api-9")).status_code == 302
    assert Camera.objects.get(pk=a.camera.pk).api_password == "new-Api-9"
    assert "new-Api-9" not in client.get(url).content.decode()
    cleared = _camera_form(camera, clear_api_password="on")
    assert client.post(url, cleared).status_code == 302
    assert Camera.objects.get(pk=a.camera.pk).api_password == ""
    assert camera.key_digest == Camera.objects.get(pk=a.camera.pk).key_digest  # key untouched


def test_rotating_a_key_shows_the_new_one_once_refuses_the_old_and_is_audited(
    world: dict[str, Any],
) -> None:
    a: LotWorld = world["a"]
    operator = world["users"]["operator"]
    client = client_for(operator)
    device = Client()
    assert push(device, a.camera, "k-caike") == 200
    url = reverse("admin:devices_camera_rotate_key", args=[a.camera.pk])
    change = client.get(reverse("admin:devices_camera_change", args=[a.camera.pk]))
    assert url in change.content.decode()
    assert client.get(url).status_code == 200
    assert push(device, a.camera, "k-caike") == 200  # asking changes nothing
    shown = client.post(url)
    assert "no-store" in shown["Cache-Control"]
    found = re.search(r'id="new-secret"[^>]*>([^<]+)<', shown.content.decode())
    assert found is not None
    key = found.group(1)
    assert f"/devices/lpr/vzenith/{key}" in shown.content.decode()
    assert push(device, a.camera, "k-caike") == 404
    assert push(device, a.camera, key) == 200
    camera = Camera.objects.get(pk=a.camera.pk)
    assert camera.key_digest == key_digest(key)
    assert camera.key_hint == key[-4:]
    body = client.get(reverse("admin:devices_camera_change", args=[a.camera.pk])).content.decode()
    assert key not in body
    assert "••••••••" + key[-4:] in body
    latest = Camera.history.filter(id=a.camera.pk).latest()
    assert (latest.history_change_reason, latest.history_user) == ("endpoint key rotated", operator)


@pytest.mark.parametrize(("role", "status"), [("agent", 403), ("operator_b", 404)])
def test_only_staff_who_may_change_the_camera_rotate_its_key(
    world: dict[str, Any], role: str, status: int
) -> None:
    a: LotWorld = world["a"]
    client = client_for(world["users"][role])
    url = reverse("admin:devices_camera_rotate_key", args=[a.camera.pk])
    assert client.post(url).status_code in (status, 302)
    assert Camera.objects.get(pk=a.camera.pk).key_digest == key_digest("k-caike")


def test_no_old_version_of_a_device_can_be_opened_or_restored(world: dict[str, Any]) -> None:
    a: LotWorld = world["a"]
    client = client_for(world["users"]["superuser"])
    version = Camera.history.filter(id=a.camera.pk).earliest().history_id
    url = reverse("admin:devices_camera_simple_history", args=[a.camera.pk, version])
    assert client.get(url).status_code == 403
    assert client.post(url, _camera_form(a.camera, name="old")).status_code == 403


def test_the_gate_loop_writes_no_device_history(world: dict[str, Any]) -> None:
    from django.utils import timezone

    from eppark.gateway import store
    from eppark.sim.cameras import build_push

    a: LotWorld = world["a"]
    robots, cameras = Robot.history.count(), Camera.history.count()
    device = Client()
    assert push(device, a.camera, "k-caike") == 200  # a heartbeat marks the camera online
    read = build_push("vzenith", a.camera.serial, "粤B11111", timezone.now(), plate_id=7)
    url = "/devices/lpr/vzenith/k-caike" + (f"/{read.path}" if read.path else "")
    assert device.post(url, data=read.body, content_type=read.content_type).status_code == 200
    store.apply_status(a.robot.code, b"online", timezone.now())
    assert Robot.objects.get(pk=a.robot.pk).online
    assert Camera.objects.get(pk=a.camera.pk).online
    assert (Robot.history.count(), Camera.history.count()) == (robots, cameras)


def test_the_secret_pages_and_the_code_rule_speak_chinese(world: dict[str, Any]) -> None:
    a: LotWorld = world["a"]
    client = client_for(world["users"]["superuser"])
    robot_page = client.get(reverse("admin:devices_robot_mqtt_password", args=[a.robot.pk]))
    assert "只在下一页显示一次" in robot_page.content.decode()
    camera_page = client.get(reverse("admin:devices_camera_rotate_key", args=[a.camera.pk]))
    assert "设置新的推送密钥" in camera_page.content.decode()
    refused = client.post(reverse("admin:devices_robot_add"), _robot_form(world, "出口 1"))
    assert "出口 1&#x27; 不能作为机器人编号：1 到 64 个字符" in refused.content.decode()


def test_a_robot_stored_with_a_bad_code_before_the_rule_does_not_break_its_gate(
    world: dict[str, Any],
) -> None:
    from django.utils import timezone

    from eppark.sim.cameras import build_push

    a: LotWorld = world["a"]
    Robot.objects.filter(pk=a.robot.pk).update(code="出口 1")  # saved before codes were checked
    registry.forget()
    read = build_push("vzenith", a.camera.serial, "粤B12345", timezone.now(), plate_id=9)
    url = "/devices/lpr/vzenith/k-caike" + (f"/{read.path}" if read.path else "")
    response = Client().post(url, data=read.body, content_type=read.content_type)
    assert response.status_code == 200
