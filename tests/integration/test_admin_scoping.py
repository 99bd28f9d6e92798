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
