"""What the robot does in each gate scenario (manual 2.2; scenarios.md §1).

Voice texts are the manual's, word for word. ``exit.no_entry_record`` is not in
the manual: its wording is the project's own (see ``NO_ENTRY_RECORD_VOICE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any


class Light(StrEnum):
    """Colour of the robot's light band."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


class Qr(StrEnum):
    """Which QR code the robot's screen shows."""

    UNPLATED_ENTRY = "unplated_entry"
    MONTHLY_RENEWAL = "monthly_renewal"
    TEMP_PAYMENT = "temp_payment"
    UNPLATED_EXIT = "unplated_exit"


class ExpectedAction(StrEnum):
    """What the driver is expected to do next (drives the 1-minute outbound-call rule)."""

    UNPLATED_ENTRY_SCAN = "unplated_entry_scan"
    MONTHLY_ORDER = "monthly_order"
    TEMP_ORDER = "temp_order"
    UNPLATED_EXIT_ORDER = "unplated_exit_order"
    LEAVE = "leave"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class Display:
    """What the robot's screen shows: a face, a QR code, a text, or the group's cars inside."""

    kind: str
    face: str | None = None
    qr: Qr | None = None
    text: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The contract's ``display`` object."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "face":
            out["face"] = self.face
        elif self.kind == "qr":
            out["qr"] = str(self.qr)
        elif self.kind == "text":
            out["text"] = self.text
        return out


SMILE = Display("face", face="smile")
VEHICLES = Display("vehicles")


def qr(code: Qr) -> Display:
    """A QR-code screen."""
    return Display("qr", qr=code)


def text(value: str) -> Display:
    """A text screen."""
    return Display("text", text=value)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One row of the manual's gate table: what the robot says, shows and does."""

    id: str
    voice: str
    display: Display
    light: Light
    opens: bool
    expected_action: ExpectedAction | None
    title: str

    def to_json(self) -> dict[str, Any]:
        """The contract's *decision* object (a fresh copy: callers may change it)."""
        return {**_decision_json(self), "display": self.display.to_json()}


@cache
def _decision_json(scenario: Scenario) -> dict[str, Any]:
    return {
        "scenario": scenario.id,
        "open": scenario.opens,
        "voice": scenario.voice,
        "display": None,
        "light": str(scenario.light),
        "expected_action": None
        if scenario.expected_action is None
        else str(scenario.expected_action),
    }


NO_ENTRY_RECORD_VOICE = "未找到您的进场记录，请按呼叫按钮联系客服"
NO_ENTRY_RECORD_TEXT = "未找到进场记录，请呼叫客服"

_A = ExpectedAction
_ROWS = (
    # Entry (manual 2.2.1)
    Scenario("entry.monthly_valid", "欢迎回家", SMILE, Light.GREEN, True, None, "月卡车进场"),
    Scenario(
        "entry.unplated",
        "您的车牌无法识别，请扫码后开闸进场，出场前请在出口处扫码出场",
        qr(Qr.UNPLATED_ENTRY),
        Light.GREEN,
        False,
        _A.UNPLATED_ENTRY_SCAN,
        "无牌车进场",
    ),
    Scenario(
        "entry.monthly_expired",
        "您的月卡已过期，请扫码缴费后进场",
        qr(Qr.MONTHLY_RENEWAL),
        Light.GREEN,
        False,
        _A.MONTHLY_ORDER,
        "月卡过期（7天内）进场",
    ),
    Scenario("entry.temp_allowed", "欢迎光临", SMILE, Light.GREEN, True, None, "临停车进场"),
    Scenario(
        "entry.temp_forbidden",
        "该停车场不允许临停车辆进场，有需请联系管理处",
        text("该车场禁止临停"),
        Light.YELLOW,
        False,
        _A.LEAVE,
        "临停车禁止进场",
    ),
    Scenario(
        "entry.shared_full",
        "您的共享车位已满，该车场不允许临停车辆进场，有需请联系管理处",
        VEHICLES,
        Light.YELLOW,
        False,
        _A.LEAVE,
        "共享车位被占进场",
    ),
    # Exit (manual 2.2.2)
    Scenario("exit.monthly_valid", "一路平安", SMILE, Light.GREEN, True, None, "月卡车出场"),
    Scenario(
        "exit.monthly_expired_grace",
        "您的月卡已过期，注意及时缴费",
        qr(Qr.MONTHLY_RENEWAL),
        Light.GREEN,
        True,
        None,
        "月卡过期（≤3天）出场",
    ),
    Scenario(
        "exit.monthly_expired",
        "您的月卡已过期，请扫码缴费",
        qr(Qr.MONTHLY_RENEWAL),
        Light.GREEN,
        False,
        _A.MONTHLY_ORDER,
        "月卡过期（3~7天）出场",
    ),
    Scenario(
        "exit.monthly_lapsed",
        "您的月卡超期未缴费，请联系管理处重新排队申请月卡",
        qr(Qr.TEMP_PAYMENT),
        Light.YELLOW,
        False,
        _A.TEMP_ORDER,
        "月卡过期（>7天）出场",
    ),
    Scenario(
        "exit.unplated",
        "无牌车请扫码付费后出场",
        qr(Qr.UNPLATED_EXIT),
        Light.GREEN,
        False,
        _A.UNPLATED_EXIT_ORDER,
        "无牌车出场",
    ),
    Scenario(
        "exit.temp_unpaid",
        "请扫码缴费后出场",
        qr(Qr.TEMP_PAYMENT),
        Light.GREEN,
        False,
        _A.TEMP_ORDER,
        "临停车未缴费出场",
    ),
    Scenario(
        "exit.shared_full_unpaid",
        "请扫码缴费后出场",
        qr(Qr.TEMP_PAYMENT),
        Light.GREEN,
        False,
        _A.TEMP_ORDER,
        "共享车位被占的临停车未缴费出场",
    ),
    Scenario("exit.temp_paid", "一路平安", SMILE, Light.GREEN, True, None, "临停车已缴费出场"),
    Scenario(
        "exit.no_entry_record",
        NO_ENTRY_RECORD_VOICE,
        text(NO_ENTRY_RECORD_TEXT),
        Light.YELLOW,
        False,
        _A.AGENT,
        "无进场记录出场",
    ),
)

SCENARIOS: dict[str, Scenario] = {row.id: row for row in _ROWS}
