"""The live pages in a real browser: log in, watch a robot's screen change, see every gate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from eppark.accounts.models import Role
from eppark.accounts.roles import sync_role_groups
from eppark.devices.models import Robot, RobotScreen
from eppark.stays.models import GateVisit
from tests.integration.factories import build_lot, staff

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-not-used"
WAIT = 10_000  # ms the page gets to pick up a change by polling
QR_TEXT = "http://127.0.0.1:8000/q/demo-unplated-entry-token"


@pytest.fixture
def world(live_server: Any) -> dict[str, Any]:
    sync_role_groups()  # transactional tests flush the groups the migrations made
    root = User.objects.create_superuser("root", password=PASSWORD)
    a = build_lot("caike", "彩科彩悦大厦", "粤B11111", root)
    b = build_lot("futian", "福田中心", "粤B99999", root)
    GateVisit.objects.update(resolved_at=timezone.now(), resolution="opened")
    Robot.objects.filter(pk=a.robot.pk).update(online=True, last_seen_at=timezone.now())
    RobotScreen.objects.create(
        robot=a.robot,
        voice="一路平安",
        display={"kind": "face", "face": "smile"},
        light="green",
        since=timezone.now(),
        cmd_id="c-1",
    )
    agent = staff("kf-001", Role.AGENT, [a.lot])
    return {"a": a, "b": b, "agent": agent, "url": live_server.url}


def log_in(page: Page, base: str, path: str, username: str) -> None:
    """Open ``path``, get sent to the admin login form, fill it in and come back."""
    page.goto(base + path)
    expect(page).to_have_url(f"{base}{reverse('admin:login')}?next={path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(base + path)


def set_screen(robot: Robot, **fields: Any) -> None:
    """Change what the robot reports it shows, as the gateway does when an ack arrives."""
    RobotScreen.objects.filter(robot=robot).update(since=timezone.now(), **fields)


def kind_is(page: Page, kind: str) -> None:
    page.wait_for_function(
        "kind => document.getElementById('screen').dataset.kind === kind", arg=kind, timeout=WAIT
    )


def test_robot_page_follows_the_robot_screen(world: dict[str, Any], browser_page: Page) -> None:
    page, a = browser_page, world["a"]
    path = reverse("console:robot", args=[a.robot.code])
    log_in(page, world["url"], path, "kf-001")

    expect(page.locator("#smile")).to_be_visible()
    expect(page.locator("#band")).to_have_attribute("data-band", "green")
    expect(page.locator("#voice-text")).to_have_text("一路平安")
    expect(page.locator("#online")).to_have_text("在线")
    page.screenshot(path="/tmp/eppark-robot-face.png")

    set_screen(
        a.robot,
        voice="您的车牌无法识别，请扫码后开闸进场，出场前请在出口处扫码出场",
        display={"kind": "qr", "qr": QR_TEXT},
    )
    kind_is(page, "qr")
    expect(page.locator("#qr svg")).to_be_visible()
    expect(page.locator("#smile")).to_be_hidden()
    expect(page.locator("#voice-text")).to_contain_text("您的车牌无法识别")
    assert page.locator("#qr").get_attribute("data-qr") == QR_TEXT
    page.screenshot(path="/tmp/eppark-robot-qr.png")

    set_screen(
        a.robot,
        voice="该停车场不允许临停车辆进场，有需请联系管理处",
        display={"kind": "text", "text": "该车场禁止临停"},
        light="yellow",
    )
    kind_is(page, "text")
    expect(page.locator("#display-text")).to_have_text("该车场禁止临停")
    expect(page.locator("#band")).to_have_attribute("data-band", "yellow")
    page.screenshot(path="/tmp/eppark-robot-text.png")

    set_screen(
        a.robot,
        voice="您的共享车位已满，该车场不允许临停车辆进场，有需请联系管理处",
        display={
            "kind": "vehicles",
            "vehicles": [
                {"plate": "粤B12345", "photo_url": None, "entered_at": "2025-05-01T00:30:00Z"},
                {"plate": "粤B54321", "photo_url": None, "entered_at": None},
            ],
        },
    )
    kind_is(page, "vehicles")
    expect(page.locator("#vehicles .vehicle")).to_have_count(2)
    expect(page.locator("#vehicles")).to_contain_text("粤B12345")
    expect(page.locator("#vehicles")).to_contain_text("2025-05-01 08:30:00")
    page.screenshot(path="/tmp/eppark-robot-vehicles.png")

    Robot.objects.filter(pk=a.robot.pk).update(online=False)
    page.wait_for_function(
        "() => document.getElementById('band').dataset.band === 'grey'", timeout=WAIT
    )
    expect(page.locator("#online")).to_have_text("离线")


def test_other_lots_robot_is_not_found(world: dict[str, Any], browser_page: Page) -> None:
    page = browser_page
    log_in(page, world["url"], reverse("console:city"), "kf-001")
    response = page.goto(world["url"] + reverse("console:robot", args=[world["b"].robot.code]))
    assert response is not None
    assert response.status == 404


def test_city_lists_the_gates_and_a_waiting_car(world: dict[str, Any], browser_page: Page) -> None:
    page, a = browser_page, world["a"]
    log_in(page, world["url"], reverse("console:city"), "kf-001")
    lot = page.locator(f'[data-lot-id="{a.lot.pk}"]')
    expect(lot).to_contain_text("彩科彩悦大厦")
    expect(lot.locator(".gate")).to_have_count(2)
    expect(page.locator("#lots")).not_to_contain_text("福田中心")
    exit_row = page.locator(f'[data-gate-id="{a.exit.pk}"]')
    expect(exit_row).to_contain_text("无车等候")

    GateVisit.objects.create(
        gate=a.exit,
        lot=a.lot,
        plate="粤B30003",
        arrived_at=timezone.now() - timedelta(seconds=75),
        scenario="exit.temp_unpaid",
        expected_action="temp_order",
    )
    expect(exit_row.locator(".plate")).to_have_text("粤B30003", timeout=WAIT)
    expect(exit_row).to_contain_text("临停车未缴费出场")
    expect(exit_row.locator(".robot-link")).to_have_attribute(
        "href", reverse("console:robot", args=[a.robot.code])
    )
    page.screenshot(path="/tmp/eppark-city.png", full_page=True)

    page.select_option("#language-switch select", "en")
    expect(page.locator("h1")).to_have_text("All gates")
    expect(exit_row).to_contain_text("online")
    expect(page.locator("th").first).to_have_text("Gate")
    page.screenshot(path="/tmp/eppark-city-en.png", full_page=True)


def test_congestion_list_updates_itself(world: dict[str, Any], browser_page: Page) -> None:
    page, a = browser_page, world["a"]
    log_in(page, world["url"], reverse("console:congestion"), "kf-001")
    expect(page.locator("#held-empty")).to_be_visible()
    expect(page.locator("#held-empty")).to_have_text("当前没有滞留车辆。")

    later = GateVisit.objects.create(
        gate=a.exit,
        lot=a.lot,
        plate="粤B00090",
        arrived_at=timezone.now() - timedelta(seconds=90),
        scenario="exit.temp_unpaid",
        expected_action="temp_order",
        decision={"voice": "请扫码缴费后出场"},
    )
    GateVisit.objects.create(
        gate=a.entry,
        lot=a.lot,
        plate="粤B00300",
        arrived_at=timezone.now() - timedelta(seconds=300),
        scenario="entry.temp_forbidden",
        expected_action="leave",
    )
    rows = page.locator("#held-rows tr")
    expect(rows).to_have_count(2, timeout=WAIT)
    expect(rows.nth(0)).to_contain_text("粤B00300")
    expect(rows.nth(1)).to_contain_text("粤B00090")
    expect(rows.nth(0)).to_contain_text("驶离道口")
    first_wait = rows.nth(0).locator(".waited").inner_text()
    page.wait_for_function(
        "before => document.querySelector('#held-rows .waited').textContent !== before",
        arg=first_wait,
        timeout=WAIT,
    )
    page.screenshot(path="/tmp/eppark-congestion.png", full_page=True)

    GateVisit.objects.filter(pk=later.pk).update(resolved_at=timezone.now(), resolution="left")
    expect(rows).to_have_count(1, timeout=WAIT)
