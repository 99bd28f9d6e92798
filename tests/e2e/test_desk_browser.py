"""The agent desk in Chromium, scenario by scenario (scenarios.md §2; manual 2.3.2, 2.3.3).

Each test starts from the gate: a car is read by the gate's camera (a real push to the
server), the robot gets the automatic decision over MQTT. Then the driver presses the
call button and the call centre posts ``ringing`` and ``answered`` for the robot's SIM
number and the agent's seat; the desk pops in the browser (the test waits for it, never
sleeps), the agent does what the manual says with the desk's buttons and fields, and the
test checks what the simulated robot then received and ran (voice word for word, display
kind, light; an open or none), what the desk's robot mirror shows, the open-gate log for
abnormal opens, and that ``关单`` returns the desk to idle. The agent's clicks after the
pop are counted and compared with the manual's. One screenshot per scenario is kept in
``test-artifacts/desk/<scenario>.png``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import signing
from django.utils import timezone
from playwright.sync_api import BrowserContext, Page, expect

from eppark.calls.cti import generic
from eppark.calls.models import Call, CallDirection
from eppark.console.models import AbnormalOpen, AgentAction, EvidenceKind
from eppark.devices.models import Camera
from eppark.sim.ezviz import EzvizStandIn
from eppark.stays.models import GateVisit, Stay
from tests.e2e.desk_harness import (
    CallCentre,
    CalloutStandIn,
    DeskServer,
    Gates,
    Robot,
    Sent,
    log_in,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # Django serves the desk's static files under ASGI from a file iterator (tests only)
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous"),
]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "desk"
ACTIONS_FILE = Path(os.environ.get("EPPARK_DESK_ACTIONS") or ARTIFACTS / "actions.json")
"""The agent's clicks per scenario, for ``bench/desk.py`` (which points it elsewhere)."""

WELCOME_HOME = "欢迎回家"
WELCOME = "欢迎光临"
GOODBYE = "一路平安"
PAY_OR_SHOW = "请扫码缴费或者出示您的微信付款码"
SHOW_ID = "请出示您的有效证件，对准证件识别区正前方20厘米处，谢谢您的配合！"


@dataclass(frozen=True)
class Expected:
    """What scenarios.md says the robot shows after the agent's action, and the manual's
    count of the agent's clicks after the pop (fields typed are not clicks)."""

    voice: str | None
    display: str | None  # display kind: face, qr, text, vehicles
    light: str | None
    opens: bool
    actions: int
    qr: str | None = None  # the QR code's purpose, for a qr display
    step: int = -1  # which of the robot's screens since the pop is the scenario's (the last)


EXPECTED: dict[str, Expected] = {
    # entry
    "B1": Expected(WELCOME_HOME, "face", "green", True, 2),  # 查询, 开闸
    "B2a": Expected(WELCOME_HOME, "face", "green", True, 1),  # 开闸
    "B2b": Expected(
        "您的月卡已过期，请扫码缴费后进场", "qr", "green", False, 1, "monthly_renewal"
    ),  # 发送到显示屏
    "B3a": Expected(
        "您的车牌无法识别，请扫码后开闸进场，出场前请在出口处扫码出场",
        "qr",
        "green",
        False,
        1,
        "unplated_entry",
    ),  # 发送到显示屏
    "B3b": Expected(WELCOME, "face", "green", True, 2),  # 异常开闸 (the form), 异常开闸
    "B4a": Expected(WELCOME, "face", "green", True, 2),  # 访客登记放行 (the form), 访客登记放行
    "B5a": Expected(WELCOME, "face", "green", True, 1),  # 开闸
    "B5b": Expected(
        "您的共享车位已满，该车场不允许临停车辆进场，有需请联系管理处",
        "vehicles",
        "yellow",
        False,
        1,
    ),  # 发送到显示屏
    # exit
    "C1": Expected(GOODBYE, "face", "green", True, 2),  # 查询, 开闸
    "C2a": Expected(GOODBYE, "face", "green", True, 1),  # 开闸
    "C2b": Expected(
        "您的月卡已过期，请扫码缴费后出场", "qr", "green", False, 1, "monthly_renewal"
    ),  # 发送到显示屏
    "C2c": Expected("请扫码缴费后出场", "qr", "green", False, 1, "temp_payment"),  # 快速码
    "C2d": Expected(GOODBYE, "face", "green", True, 1),  # 查询 (the paid state opens it)
    "C3a": Expected(
        "您的车牌无法识别，请扫码付费后出场", "qr", "green", False, 1, "unplated_exit"
    ),  # 临停快速码推送或出示付款码
    # 异常开闸 (the form), ID photo, scene snapshot, 异常开闸: the manual's own steps are
    # more (open the ID camera, take, save; open the environment camera, take, save; open).
    # The robot's screen of the scenario is the ID prompt, the first after the pop.
    "C3b": Expected(SHOW_ID, "text", "green", True, 2, step=0),
    "C4a": Expected(GOODBYE, "face", "green", True, 1),  # 开闸
    "C4b": Expected(PAY_OR_SHOW, "face", "green", False, 1),  # 临停快速码推送或出示付款码
    "C5": Expected(PAY_OR_SHOW, "face", "green", False, 1),  # 发送到显示屏
    "C6a": Expected(PAY_OR_SHOW, "face", "green", False, 2),  # 确认为该车辆, 发送到显示屏
    "outbound": Expected(None, None, None, False, 1),  # 呼叫
}


# --- the desk in the browser ---------------------------------------------------------------------


class Desk:
    """The agent's desk page, driven by its labels; counts the agent's clicks."""

    def __init__(self, page: Page, server: DeskServer, gates: Gates, centre: CallCentre) -> None:
        self.page = page
        self.server = server
        self.gates = gates
        self.centre = centre
        self.actions = 0
        self.call: Call | None = None
        self.robot: Robot | None = None
        self.mark = 0

    def open(self) -> None:
        """Open the desk; wait until its socket is up."""
        self.page.goto(self.server.url + "/console/")
        expect(self.page.locator("#desk")).to_have_attribute("data-connected", "1")
        expect(self.page.locator("#desk-home")).to_be_visible()

    def car_at(self, direction: str, plate: str | None) -> GateVisit:
        """A car read at the gate; the robot ran the gate's automatic decision."""
        robot = self.gates.robots[direction]
        before = robot.mark()
        visit = self.gates.arrive(direction, plate)
        robot.received(before)  # the automatic decision reached the robot first
        return visit

    def ring(self, direction: str) -> Call:
        """The driver presses the robot's call button: the call pops on the desk."""
        robot = self.gates.robots[direction]
        call_id = self.centre.ring(robot.row, self.gates.seat)
        call = Call.objects.get(call_id=call_id)
        self.popped(call, robot)
        return call

    def popped(self, call: Call, robot: Robot) -> None:
        """Wait for the desk to show ``call``; from now on the agent's clicks are counted."""
        self.call, self.robot = call, robot
        panel = self.page.locator("#call-panel")
        expect(panel).to_be_visible()
        expect(panel).to_have_attribute("data-call-id", str(call.pk))
        gate = robot.row.gate
        assert gate is not None
        expect(self.page.locator("#ov-gate")).to_contain_text(gate.name)
        expect(self.page.locator("#ov-lot")).to_contain_text(self.gates.lot.name)
        expect(self.page.locator("#ov-number")).to_contain_text(robot.phone)
        expect(self.page.locator("#mirror")).to_be_visible()
        self.actions = 0
        self.mark = robot.mark()

    # the agent's hands

    def click(self, name: str, *, within: str = "#desk", posts: bool = True) -> None:
        """Click the button labelled ``name`` (one agent action); wait for its answer."""
        button = self.page.locator(within).get_by_role("button", name=name, exact=True)
        expect(button).to_be_enabled()
        if posts:
            with self.page.expect_response(
                lambda r: r.request.method == "POST" and "/console/desk/" in r.url
            ) as answer:
                button.click()
            response = answer.value
            assert response.ok, f"{name}: {response.status} {response.text()}"
        else:
            button.click()
        self.actions += 1

    def fill(self, label: str, value: str) -> None:
        """Type into the field labelled ``label`` (not counted: typing is not a click)."""
        self.page.get_by_label(label).fill(value)  # as a person reads it: no exact match needed

    def query(self, plate: str) -> None:
        """Correct the plate (车牌号) and 查询."""
        self.fill("车牌号", plate)
        self.click("查询")
        expect(self.page.locator("#veh-plate")).to_have_text(plate)

    # what came of it

    def robot_got(self, scenario: str) -> Sent:
        """What the robot received and ran since the pop; checked against scenarios.md."""
        assert self.robot is not None
        expected = EXPECTED[scenario]
        got = self.robot.received(self.mark)
        if expected.voice is not None:
            assert got.presents, "the robot was sent nothing to show"
            shown = got.presents[expected.step]
            assert (shown.get("voice"), shown["display"]["kind"], shown["light"]) == (
                expected.voice,
                expected.display,
                expected.light,
            )
            if expected.qr is not None:
                assert qr_purpose(shown) == expected.qr
        else:
            assert got.presents == []
        assert got.opens == (1 if expected.opens else 0), got
        return got

    def mirror_shows(self, voice: str, light: str, kind: str) -> None:
        """The desk's mirror of the robot's screen shows what the robot reported."""
        mirror = self.page.locator("#mirror")
        expect(mirror).to_have_attribute("data-kind", kind)
        expect(mirror).to_have_attribute("data-band", light)
        expect(self.page.locator("#mirror-voice")).to_have_text(voice)

    def done(self, scenario: str) -> None:
        """The scenario's checks, its screenshot, then 关单: the desk is idle again."""
        expected = EXPECTED[scenario]
        got = self.robot_got(scenario)
        if expected.voice is not None:  # the mirror shows what the robot shows now
            last = got.last
            self.mirror_shows(last.get("voice") or "", last["light"], last["display"]["kind"])
        self.snap(scenario)
        counted = self.actions
        record_actions(scenario, counted)
        assert counted == expected.actions, f"{scenario}: {counted} clicks"
        self.click("关单")
        expect(self.page.locator("#call-panel")).to_be_hidden()
        expect(self.page.locator("#desk-home")).to_be_visible()
        assert self.call is not None
        self.call.refresh_from_db()
        assert self.call.closed_at is not None

    def snap(self, name: str) -> None:
        """Keep a screenshot: ``test-artifacts/desk/<name>.png``."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def qr_purpose(args: dict[str, Any]) -> str:
    """Which QR code a ``present`` shows: the purpose signed into its URL."""
    url = str(args["display"]["qr"])
    token = url.rsplit("/q/", 1)[1]
    return str(signing.loads(token, salt="eppark.qr")["k"])


def record_actions(scenario: str, count: int) -> None:
    """Keep the count for the bench's table (``ACTIONS_FILE``)."""
    ACTIONS_FILE.parent.mkdir(parents=True, exist_ok=True)
    counts = json.loads(ACTIONS_FILE.read_text()) if ACTIONS_FILE.exists() else {}
    counts[scenario] = {"counted": count, "manual": EXPECTED[scenario].actions}
    ACTIONS_FILE.write_text(json.dumps(counts, ensure_ascii=False, indent=1, sort_keys=True))


@pytest.fixture
def scene(desk_server: DeskServer) -> Iterator[Gates]:
    """The lot, its gates, robots and cameras; the agent (temp cars need confirming)."""
    gates = Gates(desk_server)
    try:
        yield gates
    finally:
        gates.close()


@pytest.fixture
def centre(desk_server: DeskServer) -> Iterator[CallCentre]:
    """The call centre's events."""
    made = CallCentre(desk_server)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def desk(
    desk_context: BrowserContext, desk_server: DeskServer, scene: Gates, centre: CallCentre
) -> Desk:
    """The agent's desk, logged in and connected."""
    log_in(desk_context, desk_server, scene.agent)
    opened = Desk(desk_context.new_page(), desk_server, scene, centre)
    opened.open()
    return opened


# --- entry ---------------------------------------------------------------------------------------


def test_b1_a_pass_misread_as_a_stranger_is_corrected_and_let_in(desk: Desk) -> None:
    desk.gates.give_pass("粤B12345")
    visit = desk.car_at("entry", "粤B12845")  # misread: a stranger, and strangers may not enter
    assert visit.scenario == "entry.temp_forbidden"
    desk.ring("entry")
    expect(desk.page.locator("#veh-plate")).to_have_text("粤B12845")
    desk.query("粤B12345")
    expect(desk.page.locator("#veh-pass")).not_to_be_empty()
    desk.click("开闸")
    desk.done("B1")
    assert Stay.objects.get(plate="粤B12345").entered_as == "pass"


def test_b2a_a_pass_expired_two_days_is_let_in(desk: Desk) -> None:
    desk.gates.give_pass("粤B22222", expired_days=2)
    assert desk.car_at("entry", "粤B22222").scenario == "entry.monthly_expired"
    desk.ring("entry")
    desk.click("开闸")
    desk.done("B2a")


def test_b2b_a_pass_expired_five_days_gets_the_renewal_code(desk: Desk) -> None:
    desk.gates.give_pass("粤B22225", expired_days=5)
    desk.car_at("entry", "粤B22225")
    desk.ring("entry")
    expect(desk.page.get_by_role("button", name="开闸", exact=True)).to_be_disabled()
    desk.click("发送到显示屏")
    desk.done("B2b")
    assert not Stay.objects.filter(plate="粤B22225").exists()


def test_b3a_an_unplated_car_gets_the_unplated_entry_code(desk: Desk) -> None:
    assert desk.car_at("entry", None).scenario == "entry.unplated"
    desk.ring("entry")
    desk.click("发送到显示屏")
    desk.done("B3a")


def test_b3b_a_special_vehicle_is_let_in_by_an_abnormal_open_and_logged(desk: Desk) -> None:
    desk.car_at("entry", "粤B99110")
    call = desk.ring("entry")
    desk.click("异常开闸", posts=False)
    dialog = "#abnormal-dialog"
    expect(desk.page.locator(dialog)).to_be_visible()
    desk.page.get_by_label("开闸原因").select_option(label="特殊车辆")
    desk.fill("备注", "警车粤B99110，王警官进出")
    desk.click("异常开闸", within=dialog)
    expect(desk.page.locator(dialog)).to_be_hidden()
    record = AbnormalOpen.objects.get()
    assert (record.gate_id, record.agent_id, record.reason, record.note, record.call_id) == (
        desk.gates.gates["entry"].pk,
        desk.gates.agent.pk,
        "special_vehicle",
        "警车粤B99110，王警官进出",
        call.pk,
    )
    desk.done("B3b")
    open_gate_log_lists(desk, record, "警车粤B99110，王警官进出")


def test_b4a_a_visitor_the_owner_vouches_for_is_registered_and_let_in(desk: Desk) -> None:
    desk.car_at("entry", "粤B44444")
    desk.ring("entry")
    desk.click("访客登记放行", posts=False)
    dialog = "#visitor-dialog"
    expect(desk.page.locator(dialog)).to_be_visible()
    desk.fill("手机号", "13800000000")
    desk.fill("原因", "1单元303业主客人，业主已确认放行")
    desk.click("访客登记放行", within=dialog)
    desk.done("B4a")
    action = AgentAction.objects.get(action="visitor_release")
    assert action.detail == {"phone": "13800000000", "reason": "1单元303业主客人，业主已确认放行"}


def test_b5a_shared_spaces_full_the_car_comes_in_as_temp(desk: Desk) -> None:
    desk.gates.give_pass("粤B51111", "粤B52222", spaces=1)
    desk.gates.inside("粤B51111", entered_as="pass")
    assert desk.car_at("entry", "粤B52222").scenario == "entry.shared_full"
    desk.ring("entry")
    desk.click("开闸")
    desk.done("B5a")
    assert Stay.objects.get(plate="粤B52222").entered_as == "temp"


def test_b5b_shared_spaces_full_and_no_temp_the_group_is_shown(desk: Desk) -> None:
    desk.gates.give_pass("粤B53333", "粤B54444", spaces=1)
    # the group's first car came in through this gate earlier: its entry photo is kept
    assert desk.car_at("entry", "粤B53333").scenario == "entry.monthly_valid"
    assert desk.car_at("entry", "粤B54444").scenario == "entry.shared_full"
    desk.ring("entry")
    desk.click("发送到显示屏")
    got = desk.robot_got("B5b")
    [inside] = got.last["display"]["vehicles"]
    assert inside["plate"] == "粤B53333"
    assert inside["photo_url"]  # the group's car with its entry photo
    desk.done("B5b")


# --- exit ----------------------------------------------------------------------------------------


def test_c1_a_pass_misread_at_the_exit_is_corrected_and_let_out(desk: Desk) -> None:
    desk.gates.give_pass("粤B12345")
    stay = desk.gates.inside("粤B12345", entered_as="pass")
    assert desk.car_at("exit", "粤B12845").scenario == "exit.no_entry_record"
    desk.ring("exit")
    desk.query("粤B12345")
    desk.click("开闸")
    desk.done("C1")
    stay.refresh_from_db()
    assert stay.exited_at is not None


def test_c2a_a_pass_expired_two_days_is_let_out(desk: Desk) -> None:
    desk.gates.give_pass("粤B23232", expired_days=2)
    desk.gates.inside("粤B23232", entered_as="temp")  # came in as temp once it had expired
    assert desk.car_at("exit", "粤B23232").scenario == "exit.temp_unpaid"
    desk.ring("exit")
    desk.click("开闸")
    desk.done("C2a")


def test_c2b_a_pass_expired_five_days_gets_the_renewal_code(desk: Desk) -> None:
    desk.gates.give_pass("粤B25252", expired_days=5)
    desk.gates.inside("粤B25252", entered_as="pass")
    assert desk.car_at("exit", "粤B25252").scenario == "exit.monthly_expired"
    desk.ring("exit")
    desk.click("发送到显示屏")
    desk.done("C2b")


def test_c2c_a_pass_expired_five_days_pays_as_temp(desk: Desk) -> None:
    desk.gates.give_pass("粤B26262", expired_days=5)
    desk.gates.inside("粤B26262", entered_as="pass")
    desk.car_at("exit", "粤B26262")
    desk.ring("exit")
    desk.click("临停快速码推送或出示付款码")
    desk.done("C2c")


def test_c2d_paid_but_the_gate_stayed_shut_a_re_query_opens_it(desk: Desk) -> None:
    stay = desk.gates.inside("粤B27272", entered_as="temp")
    desk.gates.pay(stay)
    assert desk.car_at("exit", "粤B27Z72").scenario == "exit.no_entry_record"  # misread
    desk.ring("exit")
    desk.query("粤B27272")
    desk.done("C2d")
    stay.refresh_from_db()
    assert stay.exited_at is not None


def test_c3a_an_unplated_car_gets_the_unplated_exit_code(desk: Desk) -> None:
    assert desk.car_at("exit", None).scenario == "exit.unplated"
    desk.ring("exit")
    desk.click("临停快速码推送或出示付款码")
    desk.done("C3a")


def test_c3b_a_special_vehicle_leaves_by_an_abnormal_open_with_evidence(
    desk: Desk, settings: Any
) -> None:
    exit_gate = desk.gates.gates["exit"]
    Camera.objects.create(
        vendor="ezviz",
        name="出口环境相机",
        lot=desk.gates.lot,
        gate=exit_gate,
        ezviz_serial="ez-caike-exit",
    )
    with EzvizStandIn(serials=["ez-caike-exit"]) as platform:
        settings.EPPARK_EZVIZ_URL = platform.base_url
        settings.EPPARK_EZVIZ_APP_KEY = platform.app_key
        settings.EPPARK_EZVIZ_APP_SECRET = platform.app_secret
        desk.car_at("exit", "粤B31313")
        call = desk.ring("exit")
        desk.click("异常开闸", posts=False)
        dialog = "#abnormal-dialog"
        expect(desk.page.locator("#abnormal-evidence")).to_be_visible()
        desk.page.get_by_label("开闸原因").select_option(label="特殊车辆")
        desk.fill("备注", "救护车粤B31313出场")
        # opening the form at an exit asks the robot for the ID and the camera for a snapshot
        expect(desk.page.locator("#abnormal-id-photos input[type=checkbox]")).to_have_count(1)
        expect(desk.page.locator("#abnormal-scene-photos input[type=checkbox]")).to_have_count(1)
        desk.snap("C3b-evidence")  # the form with the ID photo and the snapshot kept
        desk.click("异常开闸", within=dialog)
        expect(desk.page.locator(dialog)).to_be_hidden()
        assert platform.captures == ["ez-caike-exit"]
    record = AbnormalOpen.objects.get()
    assert (record.gate_id, record.reason, record.call_id) == (
        exit_gate.pk,
        "special_vehicle",
        call.pk,
    )
    kinds = sorted(record.evidence.values_list("kind", flat=True))
    assert kinds == sorted([EvidenceKind.ID_DOCUMENT, EvidenceKind.SCENE])
    got = desk.robot_got("C3b")
    assert got.others == ["capture_id"]
    # the show-your-ID prompt came first, then the gate's greeting with the open
    assert got.presents[0]["voice"] == SHOW_ID
    assert got.presents[0]["display"]["text"] == (
        "请出示您的有效证件，对准证件识别区正前方20厘米，谢谢您的配合！"
    )
    desk.done("C3b")
    open_gate_log_lists(desk, record, "救护车粤B31313出场")


def test_c4a_a_paid_temp_car_is_let_out(desk: Desk) -> None:
    stay = desk.gates.inside("粤B41414", entered_as="temp")
    assert desk.car_at("exit", "粤B41414").scenario == "exit.temp_unpaid"
    desk.gates.pay(stay)  # paid at the robot's code after the gate had read it
    desk.ring("exit")
    expect(desk.page.locator("#veh-due")).to_contain_text("0.00")
    desk.click("开闸")
    desk.done("C4a")


def test_c4b_an_unpaid_temp_car_gets_the_quick_pay_prompt(desk: Desk) -> None:
    desk.gates.inside("粤B42424", entered_as="temp")
    desk.car_at("exit", "粤B42424")
    desk.ring("exit")
    desk.click("临停快速码推送或出示付款码")
    desk.done("C4b")


def test_c5_a_shared_space_car_owing_temp_fees_is_asked_to_pay(desk: Desk) -> None:
    desk.gates.give_pass("粤B55551", "粤B55552", spaces=1)
    desk.gates.inside("粤B55551", entered_as="pass", hours=5)
    desk.gates.inside("粤B55552", entered_as="temp")  # came in while the space was taken
    assert desk.car_at("exit", "粤B55552").scenario == "exit.shared_full_unpaid"
    desk.ring("exit")
    desk.click("发送到显示屏")
    desk.done("C5")


def test_c6a_no_entry_record_the_agent_picks_one_of_six_similar_cars(desk: Desk) -> None:
    similar = ["粤B66668", "粤B66686", "粤B66866", "粤B68666", "粤B86666", "粤B66669", "粤B66696"]
    for n, plate in enumerate(similar):
        desk.gates.inside(plate, hours=2 + n)
    desk.gates.inside("京A00001")  # not similar at all
    assert desk.car_at("exit", "粤B66666").scenario == "exit.no_entry_record"
    desk.ring("exit")
    notice = (
        "未找到该车辆的进场记录。系统已启用车牌模糊搜索功能，已为你匹配 6 条与该车牌相近的"
        "当前在场内的车辆进场信息，请选择。"
    )
    expect(desk.page.locator("#fuzzy-notice")).to_have_text(notice)
    candidates = desk.page.locator("#fuzzy-list li.candidate")
    expect(candidates).to_have_count(6)
    picked = Stay.objects.get(plate="粤B66668")
    desk.click("确认为该车辆", within=f"li.candidate[data-stay-id='{picked.pk}']")
    expect(desk.page.locator("#veh-due")).to_contain_text("¥")  # the fee, from its entry
    desk.click("发送到显示屏")
    desk.done("C6a")
    picked.refresh_from_db()
    assert picked.plate == "粤B66666"  # the entry record now carries the plate read


# --- outbound (manual 2.3.3) ---------------------------------------------------------------------


def test_outbound_the_agent_calls_a_held_up_gate_and_the_desk_opens_on_it(
    desk_context: BrowserContext, desk_server: DeskServer, scene: Gates, centre: CallCentre
) -> None:
    stand_in = CalloutStandIn()
    try:
        centre.row.callout_url = stand_in.url
        centre.row.save()
        visit = scene.arrive("entry", "粤B70707")  # a stranger, refused: held up
        assert visit.scenario == "entry.temp_forbidden"
        GateVisit.objects.filter(pk=visit.pk).update(
            arrived_at=timezone.now() - timedelta(minutes=3)
        )
        log_in(desk_context, desk_server, scene.agent)
        desk = Desk(desk_context.new_page(), desk_server, scene, centre)
        desk.open()
        gate = scene.gates["entry"]
        row = desk.page.locator(f"tr.board-row[data-gate-id='{gate.pk}']")
        expect(row).to_be_visible()
        expect(row).to_contain_text("粤B70707")
        desk.actions = 0
        desk.click("呼叫", within=f"tr.board-row[data-gate-id='{gate.pk}']")
        [callout] = stand_in.wait_for(1)
        robot = scene.robots["entry"]
        assert callout.body["number"] == robot.phone
        assert callout.body["seat"] == scene.seat
        assert callout.signature == generic.signature(centre.row.secret, callout.raw)
        dialled = Call.objects.get(direction=CallDirection.OUTBOUND)
        centre.event(
            "outbound_connected",
            "cc-out-1",
            caller=scene.seat,
            callee=robot.phone,
            seat=scene.seat,
            request_id=callout.body["request_id"],
        )
        dialled.refresh_from_db()
        clicks = desk.actions
        desk.popped(dialled, robot)
        expect(desk.page.locator("#veh-plate")).to_have_text("粤B70707")
        desk.actions = clicks
        desk.done("outbound")
    finally:
        stand_in.close()


# --- the open-gate log (开闸列表) ----------------------------------------------------------------


def open_gate_log_lists(desk: Desk, record: AbnormalOpen, note: str) -> None:
    """The open-gate log lists the abnormal open, with its evidence photos inline."""
    page = desk.page
    page.goto(desk.server.url + "/console/opens/")
    row = page.locator("tr", has_text=note)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(desk.gates.gates[record.gate.direction].name)
    evidence = record.evidence.count()
    expect(row.locator("img")).to_have_count(evidence)
