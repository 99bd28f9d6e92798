"""Every back-office list renders for each role, and per-lot scoping refuses what it must."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from eppark.accounts.models import Role
from eppark.lots.models import Gate, Lot
from eppark.passes.models import MonthlyPass
from tests.integration.factories import LotWorld, build_lot, staff

pytestmark = pytest.mark.django_db

LISTS = [
    "lots_lot",
    "lots_gate",
    "devices_robot",
    "devices_camera",
    "passes_monthlypass",
    "passes_renewalapplication",
    "stays_stay",
    "stays_gatevisit",
    "orders_order",
    "console_abnormalopen",
    "console_seat",
]


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    root = User.objects.create_superuser("root", password="pw-not-used")
    a = build_lot("caike", "彩科彩悦大厦", "粤B11111", root)
    b = build_lot("futian", "福田中心", "粤B99999", root)
    users = {
        "agent": staff("kf-001", Role.AGENT, [a.lot]),
        "operator": staff("op-caike", Role.OPERATOR, [a.lot]),
        "admin": staff("admin-1", Role.ADMIN, []),
        "superuser": root,
        "outsider": staff("op-none", Role.OPERATOR, []),
    }
    return {"a": a, "b": b, "users": users}


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", ["agent", "operator", "admin", "superuser", "outsider"])
@pytest.mark.parametrize("model", LISTS)
def test_every_list_renders_for_every_role(world: dict[str, Any], role: str, model: str) -> None:
    response = client_for(world["users"][role]).get(reverse(f"admin:{model}_changelist"))
    if model == "console_seat" and role in ("agent", "operator", "outsider"):
        assert response.status_code in (200, 403)
        return
    assert response.status_code == 200, response.content[:500]
    body = response.content.decode()
    a: LotWorld = world["a"]
    b: LotWorld = world["b"]
    if model in ("console_seat",):
        return
    sees_a = role in ("agent", "operator", "admin", "superuser")
    sees_b = role in ("admin", "superuser")
    marker_a, marker_b = _marker(model, a), _marker(model, b)
    assert (marker_a in body) is sees_a, f"{role} on {model}: lot A"
    assert (marker_b in body) is sees_b, f"{role} on {model}: lot B"


def _marker(model: str, world: LotWorld) -> str:
    """A string that appears in a list row only when that lot's row is listed."""
    if model == "lots_lot":
        return world.lot.name + "</a>"
    if model == "lots_gate":
        return world.entry.name
    if model == "devices_robot":
        return world.robot.code
    if model == "devices_camera":
        return world.camera.serial
    if model == "orders_order":
        return world.order.out_trade_no
    if model == "console_abnormalopen":
        return world.abnormal_open.note
    return world.stay.plate


def test_back_office_is_chinese_by_default_and_english_on_request(world: dict[str, Any]) -> None:
    client = client_for(world["users"]["operator"])
    url = reverse("admin:lots_lot_changelist")
    chinese = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "选择 停车场 来修改" in chinese
    client.post(reverse("set_language"), {"language": "en", "next": "/admin/"})
    english = client.get(url).content.decode()
    assert "Select lot to change" in english
    assert "选择 停车场" not in english


def test_lot_list_shows_free_spaces_visitors_and_tariff_text(world: dict[str, Any]) -> None:
    body = (
        client_for(world["users"]["operator"])
        .get(reverse("admin:lots_lot_changelist"))
        .content.decode()
    )
    assert "30分钟内免费，1小时内5元，之后每小时3元" in body
    assert ">9<" in body  # capacity 10, one car inside


def test_operator_cannot_open_or_change_another_lots_pass(world: dict[str, Any]) -> None:
    client = client_for(world["users"]["operator"])
    other: MonthlyPass = world["b"].monthly_pass
    url = reverse("admin:passes_monthlypass_change", args=[other.pk])
    response = client.get(url)
    assert response.status_code in (302, 403, 404)
    before = MonthlyPass.objects.get(pk=other.pk).owner
    client.post(url, {"owner": "hijacked"})
    assert MonthlyPass.objects.get(pk=other.pk).owner == before


def test_operator_cannot_add_a_gate_to_another_lot(world: dict[str, Any]) -> None:
    client = client_for(world["users"]["operator"])
    other: Lot = world["b"].lot
    count = Gate.objects.count()
    response = client.post(
        reverse("admin:lots_gate_add"),
        {
            "lot": other.pk,
            "code": "sneaky",
            "name": "偷开",
            "direction": "entry",
            "opening_channel": "auto",
        },
    )
    assert response.status_code == 200  # form redisplayed with an error
    assert Gate.objects.count() == count
    own = world["a"].lot
    response = client.post(
        reverse("admin:lots_gate_add"),
        {
            "lot": own.pk,
            "code": "entry-2",
            "name": "入口2",
            "direction": "entry",
            "opening_channel": "auto",
        },
    )
    assert response.status_code == 302
    assert Gate.objects.filter(lot=own, code="entry-2").exists()


def test_agent_cannot_change_lots_or_passes(world: dict[str, Any]) -> None:
    client = client_for(world["users"]["agent"])
    lot: Lot = world["a"].lot
    url = reverse("admin:lots_lot_change", args=[lot.pk])
    client.post(url, {"name": "改名", "code": lot.code, "capacity": 1})
    assert Lot.objects.get(pk=lot.pk).name == "彩科彩悦大厦"
    assert client.get(reverse("admin:passes_monthlypass_add")).status_code == 403


def test_only_staff_who_see_every_lot_may_create_lots(world: dict[str, Any]) -> None:
    assert (
        client_for(world["users"]["operator"]).get(reverse("admin:lots_lot_add")).status_code == 403
    )
    assert client_for(world["users"]["admin"]).get(reverse("admin:lots_lot_add")).status_code == 200


def test_abnormal_open_log_is_read_only_even_for_admins(world: dict[str, Any]) -> None:
    client = client_for(world["users"]["superuser"])
    entry = world["a"].abnormal_open
    assert client.get(reverse("admin:console_abnormalopen_add")).status_code == 403
    response = client.post(
        reverse("admin:console_abnormalopen_delete", args=[entry.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert type(entry).objects.filter(pk=entry.pk).exists()


def test_anonymous_users_are_sent_to_login(world: dict[str, Any]) -> None:
    response = Client().get(reverse("admin:lots_lot_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def _camera_inline_post(robot: Any, camera: Any, gate_pk: int, **extra: str) -> dict[str, str]:
    return {
        "name": robot.name,
        "code": robot.code,
        "lot": str(robot.lot_id),
        "gate": str(robot.gate_id or ""),
        "phone": robot.phone,
        "cameras-TOTAL_FORMS": "1",
        "cameras-INITIAL_FORMS": "1",
        "cameras-MIN_NUM_FORMS": "0",
        "cameras-MAX_NUM_FORMS": "1000",
        "cameras-0-id": str(camera.pk),
        "cameras-0-robot": str(robot.pk),
        "cameras-0-vendor": camera.vendor,
        "cameras-0-name": camera.name,
        "cameras-0-serial": camera.serial,
        "cameras-0-ezviz_serial": camera.ezviz_serial,
        "cameras-0-gate": str(gate_pk),
        **extra,
    }


def test_robot_page_offers_and_takes_no_other_lots_gate(world: dict[str, Any]) -> None:
    """The reported hole: lot A's camera re-pointed at lot B's exit gate from the robot page."""
    a: LotWorld = world["a"]
    b: LotWorld = world["b"]
    client = client_for(world["users"]["operator"])
    url = reverse("admin:devices_robot_change", args=[a.robot.pk])
    assert b.exit.name not in client.get(url).content.decode()
    response = client.post(url, _camera_inline_post(a.robot, a.camera, b.exit.pk))
    assert response.status_code in (200, 403)
    a.camera.refresh_from_db()
    assert a.camera.gate_id == a.exit.pk


def test_a_two_lot_operator_cannot_join_rows_of_two_lots(world: dict[str, Any]) -> None:
    """Serving both lots, still no lot-A camera at a lot-B gate: a form error, nothing saved."""
    a: LotWorld = world["a"]
    b: LotWorld = world["b"]
    both = staff("op-both", Role.OPERATOR, [a.lot, b.lot])
    client = client_for(both)
    url = reverse("admin:devices_robot_change", args=[a.robot.pk])
    response = client.post(url, _camera_inline_post(a.robot, a.camera, b.exit.pk))
    assert response.status_code == 200
    assert "这与本条记录不属于同一个停车场" in response.content.decode()
    a.camera.refresh_from_db()
    assert a.camera.gate_id == a.exit.pk
    camera_url = reverse("admin:devices_camera_change", args=[a.camera.pk])
    response = client.post(
        camera_url,
        {"vendor": "vzenith", "lot": a.lot.pk, "gate": b.exit.pk, "robot": a.robot.pk},
    )
    assert response.status_code == 200
    a.camera.refresh_from_db()
    assert a.camera.gate_id == a.exit.pk
    gate_url = reverse("admin:lots_gate_change", args=[a.exit.pk])
    response = client.post(
        gate_url,
        {
            "lot": b.lot.pk,
            "code": "moved",
            "name": "搬走",
            "direction": "exit",
            "opening_channel": "auto",
        },
    )
    assert response.status_code == 200
    assert Gate.objects.get(pk=a.exit.pk).lot_id == a.lot.pk


def test_a_camera_added_under_a_robot_takes_the_robots_lot(world: dict[str, Any]) -> None:
    from eppark.devices.models import Camera

    a: LotWorld = world["a"]
    client = client_for(world["users"]["operator"])
    url = reverse("admin:devices_robot_change", args=[a.robot.pk])
    data = _camera_inline_post(a.robot, a.camera, a.exit.pk)
    data.update(
        {
            "cameras-TOTAL_FORMS": "2",
            "cameras-1-robot": str(a.robot.pk),
            "cameras-1-vendor": "ezviz",
            "cameras-1-name": "新环境相机",
            "cameras-1-ezviz_serial": "ez-new",
            "cameras-1-gate": "",
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Camera.objects.get(ezviz_serial="ez-new").lot_id == a.lot.pk


def test_autocomplete_is_scoped_even_through_an_admin_that_forgot_to_scope(
    world: dict[str, Any],
) -> None:
    """The site's autocomplete narrows the target admin's rows to the user's lots itself."""
    import json

    from django.contrib import admin
    from django.test import RequestFactory

    from eppark.accounts.site import BackOfficeSite

    class CarelessGateAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
        search_fields = ("name",)

    request = RequestFactory().get(
        "/admin/autocomplete/",
        {"app_label": "devices", "model_name": "camera", "field_name": "gate", "term": ""},
    )
    request.user = world["users"]["operator"]
    names = {}
    for site in (admin.AdminSite(name="plain"), BackOfficeSite(name="ours")):
        site.register(Gate, CarelessGateAdmin)
        response = site.autocomplete_view(request)
        names[site.name] = {row["text"] for row in json.loads(response.content)["results"]}
    b: LotWorld = world["b"]
    assert str(b.exit) in names["plain"]  # what Django alone would offer
    assert str(b.exit) not in names["ours"]
    assert str(world["a"].exit) in names["ours"]
