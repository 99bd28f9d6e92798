"""The agent desk's rules (manual 2.3.2; scenarios.md §2): what an agent may do for the car
at a gate, and what the robot then says, shows and lights.

Plain Python, like the rest of ``eppark.domain``: the desk's views and services ask
``allowed`` which buttons a case offers and ``screen`` what each one puts on the
robot; they never decide either themselves. Voice texts are the manual's, word for word.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from eppark.domain.decide import Direction, PassStatus
from eppark.domain.scenarios import SMILE, VEHICLES, Display, Light, Qr, qr, text


class Action(StrEnum):
    """A button on the desk (its Chinese label is the manual's)."""

    OPEN = "open"  # 开闸
    SEND_TO_DISPLAY = "send_to_display"  # 发送到显示屏
    QUICK_PAY = "quick_pay"  # 临停快速码推送或出示付款码
    VISITOR_RELEASE = "visitor_release"  # 访客登记放行
    ABNORMAL_OPEN = "abnormal_open"  # 异常开闸
    CONFIRM_VEHICLE = "confirm_vehicle"  # 确认为该车辆 (C6a)
    CLOSE = "close"  # 关单


LABELS: dict[Action, str] = {
    Action.OPEN: "开闸",
    Action.SEND_TO_DISPLAY: "发送到显示屏",
    Action.QUICK_PAY: "临停快速码推送或出示付款码",
    Action.VISITOR_RELEASE: "访客登记放行",
    Action.ABNORMAL_OPEN: "异常开闸",
    Action.CONFIRM_VEHICLE: "确认为该车辆",
    Action.CLOSE: "关单",
}

WELCOME_HOME = "欢迎回家"
WELCOME = "欢迎光临"
GOODBYE = "一路平安"
PAY_OR_SHOW_CODE = "请扫码缴费或者出示您的微信付款码"  # C4b, C5, C6a
SHOW_ID_VOICE = "请出示您的有效证件，对准证件识别区正前方20厘米处，谢谢您的配合！"  # C3b
SHOW_ID_TEXT = "请出示您的有效证件，对准证件识别区正前方20厘米，谢谢您的配合！"
FUZZY_SEARCH_NOTICE = (
    "未找到该车辆的进场记录。系统已启用车牌模糊搜索功能，已为你匹配 {n} 条与该车牌相近的"
    "当前在场内的车辆进场信息，请选择。"
)
"""What the desk says when an exit has no entry record (C6); the manual's sentence with 6."""
FUZZY_CANDIDATES = 6


@dataclass(frozen=True, slots=True)
class Screen:
    """What the robot says, shows and lights after an agent's action."""

    voice: str | None
    display: Display
    light: Light

    def args(self) -> dict[str, object]:
        """The ``present`` command's args (a QR's kind is filled in by the caller)."""
        out: dict[str, object] = {"display": self.display.to_json(), "light": str(self.light)}
        if self.voice:
            out["voice"] = self.voice
        return out


@dataclass(frozen=True, slots=True)
class Case:
    """The car at the gate as the desk sees it: the decision for its (corrected) plate."""

    direction: Direction
    scenario: str  # the decision engine's scenario id for the plate now
    pass_status: PassStatus
    has_plate: bool
    owes: bool = False  # an exit stay with a fee still due
    stay_found: bool = True  # an exit: the plate's stay was found (else C6)


def _entry_actions(case: Case) -> list[Action]:
    s = case.scenario
    actions: list[Action] = []
    if s in ("entry.monthly_valid", "entry.temp_allowed", "entry.shared_full") or (
        # B2a: a pass expired at most the lot's grace days (3) may come in as temp
        case.pass_status is PassStatus.EXPIRED_GRACE
    ):
        actions.append(Action.OPEN)
    if s in ("entry.monthly_expired", "entry.unplated", "entry.shared_full"):
        actions.append(Action.SEND_TO_DISPLAY)
    if s in ("entry.temp_forbidden", "entry.shared_full", "entry.monthly_expired"):
        actions.append(Action.VISITOR_RELEASE)  # B4a: an owner vouches for the visitor
    return actions


def _exit_actions(case: Case) -> list[Action]:
    s = case.scenario
    actions: list[Action] = []
    if s == "exit.no_entry_record":
        return [Action.CONFIRM_VEHICLE]  # C6a: pick the entry record first
    if not case.owes or case.pass_status is PassStatus.EXPIRED_GRACE:
        # C1, C2a (a pass expired ≤ 3 days), C4a (paid)
        actions.append(Action.OPEN)
    if s in ("exit.monthly_expired", "exit.shared_full_unpaid") or (
        s == "exit.temp_unpaid" and case.owes
    ):
        actions.append(Action.SEND_TO_DISPLAY)  # C2b, C5, C6a after the pick
    if case.owes or s in ("exit.unplated", "exit.monthly_expired", "exit.monthly_lapsed"):
        actions.append(Action.QUICK_PAY)  # C2c, C3a, C4b
    return actions


def allowed(case: Case) -> list[Action]:
    """The desk's buttons for ``case``, in the manual's order; abnormal open and close always."""
    actions = _entry_actions(case) if case.direction is Direction.ENTRY else _exit_actions(case)
    return [*actions, Action.ABNORMAL_OPEN, Action.CLOSE]


def open_screen(direction: Direction, on_pass: bool) -> Screen:
    """After ``开闸``/``访客登记放行``: 欢迎回家 for a pass holder entering, 欢迎光临 for a
    visitor, 一路平安 at the exit (B1, B2a, B4a, B5a, C1, C2a, C4a)."""
    if direction is Direction.EXIT:
        return Screen(GOODBYE, SMILE, Light.GREEN)
    return Screen(WELCOME_HOME if on_pass else WELCOME, SMILE, Light.GREEN)


def display_screen(case: Case) -> Screen:
    """``发送到显示屏`` (B2b, B3a, B5b, C2b, C5, C6a)."""
    s = case.scenario
    if s == "entry.monthly_expired":
        return Screen("您的月卡已过期，请扫码缴费后进场", qr(Qr.MONTHLY_RENEWAL), Light.GREEN)
    if s == "entry.unplated":
        return Screen(
            "您的车牌无法识别，请扫码后开闸进场，出场前请在出口处扫码出场",
            qr(Qr.UNPLATED_ENTRY),
            Light.GREEN,
        )
    if s == "entry.shared_full":
        return Screen(
            "您的共享车位已满，该车场不允许临停车辆进场，有需请联系管理处", VEHICLES, Light.YELLOW
        )
    if s == "exit.monthly_expired":
        return Screen("您的月卡已过期，请扫码缴费后出场", qr(Qr.MONTHLY_RENEWAL), Light.GREEN)
    return Screen(PAY_OR_SHOW_CODE, SMILE, Light.GREEN)  # C5, C6a


def quick_pay_screen(case: Case) -> Screen:
    """``临停快速码推送或出示付款码`` (C2c, C3a, C4b)."""
    if case.scenario == "exit.unplated":
        return Screen("您的车牌无法识别，请扫码付费后出场", qr(Qr.UNPLATED_EXIT), Light.GREEN)
    if case.scenario in ("exit.monthly_expired", "exit.monthly_lapsed"):
        return Screen("请扫码缴费后出场", qr(Qr.TEMP_PAYMENT), Light.GREEN)
    return Screen(PAY_OR_SHOW_CODE, SMILE, Light.GREEN)  # C4b


def show_id_screen() -> Screen:
    """An exit's abnormal open asks the driver for an ID document (C3b, C4c, C6b)."""
    return Screen(SHOW_ID_VOICE, text(SHOW_ID_TEXT), Light.GREEN)


def abnormal_open_screen(direction: Direction) -> Screen:
    """After an abnormal open: the gate's usual greeting (the manual names none)."""
    return Screen(GOODBYE if direction is Direction.EXIT else WELCOME, SMILE, Light.GREEN)


def screen(action: Action, case: Case, *, on_pass: bool = False) -> Screen | None:
    """What the robot shows after ``action`` on ``case``; None: the robot is not changed."""
    if action in (Action.OPEN, Action.VISITOR_RELEASE):
        return open_screen(case.direction, on_pass and action is Action.OPEN)
    if action is Action.SEND_TO_DISPLAY:
        return display_screen(case)
    if action is Action.QUICK_PAY:
        return quick_pay_screen(case)
    if action is Action.ABNORMAL_OPEN:
        return abnormal_open_screen(case.direction)
    return None


class AbnormalReason(StrEnum):
    """Why a gate was opened outside the rules (B3b, C3b): the manual's three reasons."""

    SPECIAL_VEHICLE = "special_vehicle"  # 特殊车辆
    SPECIAL_PERSON = "special_person"  # 特殊人员
    NON_MOTOR = "non_motor"  # 非机动车


REASON_LABELS = {
    AbnormalReason.SPECIAL_VEHICLE: "特殊车辆",
    AbnormalReason.SPECIAL_PERSON: "特殊人员",
    AbnormalReason.NON_MOTOR: "非机动车",
}
MAX_PHOTOS = 4


def evidence_problem(
    direction: Direction, reason: str, note: str, id_photos: int, scene_photos: int
) -> str | None:
    """What an abnormal open still lacks (None: it may go ahead): ``reason``, ``note``,
    ``id_photos`` or ``scene_photos``.

    Entry: a reason and a note. Exit: also 1–4 ID photos and 1–4 scene snapshots.
    """
    if reason not in {r.value for r in AbnormalReason}:
        return "reason"
    if not note.strip():
        return "note"
    if direction is Direction.EXIT:
        if not 1 <= id_photos <= MAX_PHOTOS:
            return "id_photos"
        if not 1 <= scene_photos <= MAX_PHOTOS:
            return "scene_photos"
    return None
