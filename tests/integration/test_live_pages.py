"""The live pages and their JSON twins: access, per-lot scoping, QR codes, the 1-minute rule."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import segno
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from eppark.accounts.models import Role
from eppark.console.live import qr_svg, waited_text
from eppark.devices.models import Robot, RobotScreen
from eppark.stays.models import GateVisit
from tests.integration.factories import LotWorld, build_lot, staff

pytestmark = pytest.mark.django_db

QR_TEXT = "http://127.0.0.1:8000/q/eyJrIjoidW5wbGF0ZWRfZW50cnkiLCJ2Ijo0Mn0:1uAbCd:sig"
ROLES = ["agent", "operator", "admin", "superuser", "outsider"]
SEES_A = {"agent", "operator", "admin", "superuser"}
SEES_B = {"admin", "superuser"}


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    root = User.objects.create_superuser("root", password="pw-not-used")
    a = build_lot("caike", "彩科彩悦大厦", "粤B11111", root)
    b = build_lot("futian", "福田中心", "粤B99999", root)
    GateVisit.objects.update(resolved_at=timezone.now(), resolution="opened")
    now = timezone.now()
    Robot.objects.filter(pk=a.robot.pk).update(online=True, last_seen_at=now)
    RobotScreen.objects.create(
        robot=a.robot,
        voice="一路平安",
        display={"kind": "face", "face": "smile"},
        light="green",
        since=now,
        cmd_id="c-1",
    )
    RobotScreen.objects.create(
        robot=b.robot,
        voice="请扫码缴费后出场",
        display={"kind": "qr", "qr": QR_TEXT},
        light="green",
        since=now,
        cmd_id="c-2",
    )
    users = {
        "agent": staff("kf-001", Role.AGENT, [a.lot]),
        "operator": staff("op-caike", Role.OPERATOR, [a.lot]),
        "admin": staff("admin-1", Role.ADMIN, []),
        "superuser": root,
        "outsider": staff("op-none", Role.OPERATOR, []),
        "not_staff": User.objects.create_user("driver", password="pw-not-used"),
    }
    return {"a": a, "b": b, "users": users}


def client_for(user: User | None, language: str | None = None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    if language:
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def robot_url(world: LotWorld, json: bool = False) -> str:
    name = "console:robot_state" if json else "console:robot"
    return reverse(name, args=[world.robot.code])


def held(world: LotWorld, seconds: int, plate: str, **extra: Any) -> GateVisit:
    """A car that arrived ``seconds`` ago at the lot's exit and was asked to pay."""
    fields: dict[str, Any] = {
        "scenario": "exit.temp_unpaid",
        "expected_action": "temp_order",
        "decision": {"voice": "请扫码缴费后出场"},
    }
    fields.update(extra)
    return GateVisit.objects.create(
        gate=world.exit,
        lot=world.lot,
        plate=plate,
        arrived_at=timezone.now() - timedelta(seconds=seconds),
        **fields,
    )


# --- access ---------------------------------------------------------------------------------


PAGES = ["console:city", "console:congestion"]
JSONS = ["console:city_json", "console:congestion_json"]


@pytest.mark.parametrize("who", ["anonymous", "not_staff"])
def test_pages_send_strangers_to_the_admin_login(world: dict[str, Any], who: str) -> None:
    client = client_for(None if who == "anonymous" else world["users"][who])
    for url in [*(reverse(name) for name in PAGES), robot_url(world["a"])]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
        assert "next=" in response["Location"]


@pytest.mark.parametrize("who", ["anonymous", "not_staff"])
def test_json_refuses_strangers_with_json(world: dict[str, Any], who: str) -> None:
    client = client_for(None if who == "anonymous" else world["users"][who])
    for url in [*(reverse(name) for name in JSONS), robot_url(world["a"], json=True)]:
        response = client.get(url)
        assert response.status_code == 403
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"error": "forbidden"}


@pytest.mark.parametrize("role", ROLES)
def test_robot_page_and_json_follow_the_lots_served(world: dict[str, Any], role: str) -> None:
    client = client_for(world["users"][role])
    for key, sees in (("a", role in SEES_A), ("b", role in SEES_B)):
        page = client.get(robot_url(world[key]))
        state = client.get(robot_url(world[key], json=True))
        if sees:
            assert page.status_code == 200
            assert state.status_code == 200
            assert state.json()["code"] == world[key].robot.code
        else:
            assert page.status_code == 404
            assert state.status_code == 404
            assert state.json() == {"error": "not found"}


def test_unknown_robot_is_404_json(world: dict[str, Any]) -> None:
    client = client_for(world["users"]["superuser"])
    assert client.get(reverse("console:robot", args=["EP-nope"])).status_code == 404
    response = client.get(reverse("console:robot_state", args=["EP-nope"]))
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}


@pytest.mark.parametrize("role", ROLES)
def test_city_lists_only_the_lots_served(world: dict[str, Any], role: str) -> None:
    client = client_for(world["users"][role])
    body = client.get(reverse("console:city")).content.decode()
    names = {lot["name"] for lot in client.get(reverse("console:city_json")).json()["lots"]}
    for key, sees in (("a", role in SEES_A), ("b", role in SEES_B)):
        lot: LotWorld = world[key]
        assert (lot.lot.name in body) is sees
        assert (lot.exit.name in body) is sees
        assert (lot.lot.name in names) is sees
    if role == "outsider":
        assert "您还没有负责的停车场" in body


@pytest.mark.parametrize("role", ROLES)
def test_congestion_lists_only_the_lots_served(world: dict[str, Any], role: str) -> None:
    held(world["a"], 120, "粤B10001")
    held(world["b"], 120, "粤B20002")
    client = client_for(world["users"][role])
    body = client.get(reverse("console:congestion")).content.decode()
    plates = [
        item["plate"] for item in client.get(reverse("console:congestion_json")).json()["items"]
    ]
    assert ("粤B10001" in body) is (role in SEES_A)
    assert ("粤B20002" in body) is (role in SEES_B)
    assert ("粤B10001" in plates) is (role in SEES_A)
    assert ("粤B20002" in plates) is (role in SEES_B)


# --- the robot ------------------------------------------------------------------------------


def test_robot_state_json_shape(world: dict[str, Any]) -> None:
    state = client_for(world["users"]["agent"]).get(robot_url(world["a"], json=True)).json()
    assert {"code", "name", "online", "voice", "display", "light", "since"} <= set(state)
    assert state["name"] == world["a"].robot.name
    assert state["online"] is True
    assert state["voice"] == "一路平安"
    assert state["display"] == {"kind": "face", "face": "smile"}
    assert state["light"] == "green"
    assert state["band"] == "green"
    assert state["since"].endswith("+08:00")  # the lot's time zone, Asia/Shanghai
    assert "qr_svg" not in state


def test_robot_page_shows_the_smile_light_voice_and_state(world: dict[str, Any]) -> None:
    body = client_for(world["users"]["agent"]).get(robot_url(world["a"])).content.decode()
    assert 'data-kind="face"' in body
    assert re.search(r'data-panel="face"\s*>', body), "the face panel is visible"
    assert 'id="smile"' in body
    assert 'class="band band-green"' in body
    assert "一路平安" in body
    assert "在线" in body
    assert reverse("console:robot_state", args=[world["a"].robot.code]) in body


def svg_modules(svg: str) -> list[list[bool]]:
    """The dark modules drawn by a segno SVG path, as a matrix (quiet zone included)."""
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))  # type: ignore[union-attr]
    path = re.search(r'<path stroke="#000" d="([^"]+)"', svg).group(1)  # type: ignore[union-attr]
    grid = [[False] * size for _ in range(size)]
    x = y = 0.0
    for op, a, b in re.findall(r"([MmHh])(-?[\d.]+)(?: (-?[\d.]+))?", path):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            length = float(a) if op == "h" else float(a) - x
            for column in range(int(x), int(x + length)):
                grid[int(y)][column] = True
            x += length
    return grid


def test_qr_display_is_the_real_qr_code_of_its_text(world: dict[str, Any]) -> None:
    client = client_for(world["users"]["admin"])
    state = client.get(robot_url(world["b"], json=True)).json()
    assert state["display"] == {"kind": "qr", "qr": QR_TEXT}
    svg = state["qr_svg"]
    assert svg == qr_svg(QR_TEXT)
    assert svg.startswith("<svg")
    assert 'fill="#fff"' in svg
    expected = segno.make(QR_TEXT, micro=False)
    drawn = svg_modules(svg)
    assert drawn == [[bool(m) for m in row] for row in expected.matrix_iter(scale=1, border=4)]
    assert drawn != svg_modules(qr_svg(QR_TEXT + "x") or "")
    body = client.get(robot_url(world["b"])).content.decode()
    assert svg in body
    assert re.search(r'data-panel="qr"\s*>', body)


def test_qr_text_too_long_for_a_qr_code_is_no_svg(world: dict[str, Any]) -> None:
    RobotScreen.objects.filter(robot=world["b"].robot).update(
        display={"kind": "qr", "qr": "x" * 5000}
    )
    response = client_for(world["users"]["admin"]).get(robot_url(world["b"], json=True))
    assert response.status_code == 200
    assert response.json()["qr_svg"] is None


def test_text_display(world: dict[str, Any]) -> None:
    RobotScreen.objects.filter(robot=world["a"].robot).update(
        voice="该停车场不允许临停车辆进场，有需请联系管理处",
        display={"kind": "text", "text": "该车场禁止临停"},
        light="yellow",
    )
    client = client_for(world["users"]["agent"])
    state = client.get(robot_url(world["a"], json=True)).json()
    assert state["display"] == {"kind": "text", "text": "该车场禁止临停"}
    assert state["band"] == "yellow"
    body = client.get(robot_url(world["a"])).content.decode()
    assert re.search(r'id="display-text"[^>]*>该车场禁止临停<', body)
    assert 'class="band band-yellow"' in body


def test_vehicles_display_lists_plates_photos_and_entry_times(world: dict[str, Any]) -> None:
    RobotScreen.objects.filter(robot=world["a"].robot).update(
        display={
            "kind": "vehicles",
            "vehicles": [
                {
                    "plate": "粤B12345",
                    "photo_url": "http://127.0.0.1:8000/media/photos/caike/1.jpg",
                    "entered_at": "2025-05-01T00:30:00+00:00",
                },
                {"plate": "粤B54321", "photo_url": "javascript:alert(1)", "entered_at": None},
            ],
        },
        light="yellow",
    )
    client = client_for(world["users"]["agent"])
    vehicles = client.get(robot_url(world["a"], json=True)).json()["display"]["vehicles"]
    assert vehicles[0]["photo_url"] == "http://127.0.0.1:8000/media/photos/caike/1.jpg"
    assert vehicles[1]["photo_url"] is None  # only http(s) or site paths reach an <img>
    body = client.get(robot_url(world["a"])).content.decode()
    assert "粤B12345" in body
    assert "粤B54321" in body
    assert 'src="http://127.0.0.1:8000/media/photos/caike/1.jpg"' in body
    assert "2025-05-01 08:30:00" in body  # shown in the lot's time zone
    assert "javascript:" not in body


def test_offline_robot_band_is_grey(world: dict[str, Any]) -> None:
    Robot.objects.filter(pk=world["a"].robot.pk).update(online=False)
    client = client_for(world["users"]["agent"])
    state = client.get(robot_url(world["a"], json=True)).json()
    assert state["online"] is False
    assert state["light"] == "green"
    assert state["band"] == "grey"
    body = client.get(robot_url(world["a"])).content.decode()
    assert 'class="band band-grey"' in body
    assert "离线" in body


@pytest.mark.parametrize(
    "display", [None, "nonsense", {"kind": "hologram"}, {"kind": "vehicles", "vehicles": "x"}]
)
def test_odd_or_missing_screens_render(world: dict[str, Any], display: Any) -> None:
    if display is None:
        RobotScreen.objects.filter(robot=world["a"].robot).delete()
    else:
        RobotScreen.objects.filter(robot=world["a"].robot).update(display=display)
    client = client_for(world["users"]["agent"])
    assert client.get(robot_url(world["a"])).status_code == 200
    state = client.get(robot_url(world["a"], json=True)).json()
    if display is None:
        assert state["display"] is None
        assert state["band"] == "grey"
    assert client.get(reverse("console:city_json")).status_code == 200


# --- the city -------------------------------------------------------------------------------


def test_city_json_has_every_gate_with_robot_camera_and_waiting_car(
    world: dict[str, Any],
) -> None:
    held(world["a"], 30, "粤B30003")
    state = client_for(world["users"]["agent"]).get(reverse("console:city_json")).json()
    (lot,) = state["lots"]
    assert lot["name"] == "彩科彩悦大厦"
    assert lot["free_spaces"] == world["a"].lot.free_spaces() == 9
    assert lot["visitors_allowed"] is False
    gates = {gate["name"]: gate for gate in lot["gates"]}
    assert set(gates) == {"彩科彩悦大厦入口", "彩科彩悦大厦出口"}
    exit_gate = gates["彩科彩悦大厦出口"]
    assert exit_gate["direction"] == "exit"
    assert exit_gate["robot"]["online"] is True
    assert exit_gate["robot"]["band"] == "green"
    assert exit_gate["robot"]["voice"] == "一路平安"
    assert exit_gate["robot"]["url"] == robot_url(world["a"])
    assert exit_gate["cameras"] == [{"name": str(world["a"].camera), "online": False}]
    waiting = exit_gate["waiting"]
    assert waiting["plate"] == "粤B30003"
    assert waiting["scenario"] == "exit.temp_unpaid"
    assert waiting["title"] == "临停车未缴费出场"
    assert 30 <= waiting["waited_seconds"] < 3600
    entry_gate = gates["彩科彩悦大厦入口"]
    assert entry_gate["robot"] is None
    assert entry_gate["waiting"] is None


def test_city_page_links_gates_to_robot_pages_and_shows_the_waiting_car(
    world: dict[str, Any],
) -> None:
    held(world["a"], 30, "粤B30003")
    body = client_for(world["users"]["agent"]).get(reverse("console:city")).content.decode()
    assert f'href="{robot_url(world["a"])}"' in body
    assert "粤B30003" in body
    assert "临停车未缴费出场" in body
    assert "空余车位" in body
    assert "禁止临停" in body


def test_city_waiting_car_is_the_latest_unresolved_visit(world: dict[str, Any]) -> None:
    held(world["a"], 300, "粤B00001")
    held(world["a"], 10, "粤B00002")
    held(world["a"], 5, "粤B00003", resolved_at=timezone.now(), resolution="left")
    state = client_for(world["users"]["agent"]).get(reverse("console:city_json")).json()
    exit_gate = next(g for g in state["lots"][0]["gates"] if g["direction"] == "exit")
    assert exit_gate["waiting"]["plate"] == "粤B00002"


# --- the held-up list -----------------------------------------------------------------------


def test_congestion_follows_the_one_minute_rule_longest_first(
    world: dict[str, Any], settings: Any
) -> None:
    settings.EPPARK_CONGESTION_SECONDS = 60  # the manual's minute
    held(world["a"], 30, "粤B00030")  # within the minute: not yet
    held(world["a"], 61, "粤B00061")
    held(world["a"], 600, "粤B00600")
    held(world["a"], 3700, "粤B03700", scenario="exit.no_entry_record", expected_action="agent")
    held(world["a"], 900, "粤B00900", resolved_at=timezone.now(), resolution="driver_acted")
    held(world["a"], 900, "粤B00901", scenario="exit.temp_paid", expected_action="")
    items = (
        client_for(world["users"]["agent"]).get(reverse("console:congestion_json")).json()["items"]
    )
    assert [item["plate"] for item in items] == ["粤B03700", "粤B00600", "粤B00061"]
    first = items[0]
    assert first["gate"]["name"] == "彩科彩悦大厦出口"
    assert first["lot"]["name"] == "彩科彩悦大厦"
    assert first["title"] == "无进场记录出场"
    assert first["voice"] == "请扫码缴费后出场"  # what the visit's decision said
    assert first["expected_action"] == "agent"
    assert first["expected_action_label"] == "呼叫客服"
    assert first["waited_seconds"] >= 3700
    assert first["waited"].count(":") == 2
    assert first["robot_url"] == robot_url(world["a"])
    assert items[2]["waited_seconds"] >= 61


def test_congestion_page_rows_and_empty_state(world: dict[str, Any]) -> None:
    client = client_for(world["users"]["agent"])
    body = client.get(reverse("console:congestion")).content.decode()
    assert "当前没有滞留车辆" in body
    held(world["a"], 200, "粤B00200")
    held(world["a"], 100, "粤B00100")
    body = client.get(reverse("console:congestion")).content.decode()
    assert body.index("粤B00200") < body.index("粤B00100")
    assert "临停车未缴费出场" in body
    assert "扫码缴纳停车费" in body
    assert re.search(r'id="held-empty"[^>]*hidden', body)


def test_waited_text() -> None:
    assert waited_text(0) == "0:00"
    assert waited_text(61) == "1:01"
    assert waited_text(3700) == "1:01:40"
    assert waited_text(-5) == "0:00"


# --- languages ------------------------------------------------------------------------------


def test_chinese_by_default_english_by_cookie(world: dict[str, Any]) -> None:
    user = world["users"]["agent"]
    chinese = client_for(user).get(reverse("console:city")).content.decode()
    english = client_for(user, "en").get(reverse("console:city")).content.decode()
    assert "所有道口" in chinese
    assert "All gates" not in chinese
    assert "All gates" in english
    assert "所有道口" not in english
    state = client_for(user, "en").get(reverse("console:congestion")).content.decode()
    assert "No car is held up right now." in state
    robot = client_for(user, "en").get(robot_url(world["a"])).content.decode()
    assert ">online<" in robot
