"""The desk's rules (eppark.domain.desk): which buttons a case offers, what each shows."""

from __future__ import annotations

import pytest

from eppark.domain.decide import Direction, PassStatus
from eppark.domain.desk import (
    Action,
    Case,
    allowed,
    evidence_problem,
    screen,
    show_id_screen,
)

A = Action


def case(direction: str, scenario: str, status: PassStatus = PassStatus.NONE, **kw: bool) -> Case:
    return Case(Direction(direction), scenario, status, has_plate=True, **kw)


@pytest.mark.parametrize(
    ("c", "buttons"),
    [
        (case("entry", "entry.monthly_valid", PassStatus.VALID), [A.OPEN]),  # B1
        (
            case("entry", "entry.monthly_expired", PassStatus.EXPIRED_GRACE),
            [A.OPEN, A.SEND_TO_DISPLAY, A.VISITOR_RELEASE],
        ),  # B2a
        (
            case("entry", "entry.monthly_expired", PassStatus.EXPIRED_PAYABLE),
            [A.SEND_TO_DISPLAY, A.VISITOR_RELEASE],
        ),  # B2b
        (case("entry", "entry.unplated"), [A.SEND_TO_DISPLAY]),  # B3a
        (case("entry", "entry.temp_forbidden"), [A.VISITOR_RELEASE]),  # B4a
        (
            case("entry", "entry.shared_full", PassStatus.VALID),
            [A.OPEN, A.SEND_TO_DISPLAY, A.VISITOR_RELEASE],
        ),  # B5
        (case("exit", "exit.monthly_valid", PassStatus.VALID), [A.OPEN]),  # C1
        (case("exit", "exit.temp_paid"), [A.OPEN]),  # C4a
        (
            case("exit", "exit.temp_unpaid", owes=True),
            [A.SEND_TO_DISPLAY, A.QUICK_PAY],
        ),  # C4b, C6a after the pick
        (case("exit", "exit.unplated", owes=False), [A.OPEN, A.QUICK_PAY]),
        (case("exit", "exit.no_entry_record", stay_found=False), [A.CONFIRM_VEHICLE]),  # C6
    ],
)
def test_each_case_offers_the_manuals_buttons_plus_abnormal_open_and_close(
    c: Case, buttons: list[Action]
) -> None:
    assert allowed(c) == [*buttons, A.ABNORMAL_OPEN, A.CLOSE]


def test_an_unpaid_exit_is_never_offered_a_plain_open() -> None:
    assert A.OPEN not in allowed(case("exit", "exit.temp_unpaid", owes=True))
    assert A.OPEN not in allowed(case("exit", "exit.shared_full_unpaid", owes=True))


@pytest.mark.parametrize(
    ("action", "c", "on_pass", "expected"),
    [
        (A.OPEN, case("entry", "entry.monthly_valid"), True, ("欢迎回家", "face", "green")),
        (A.OPEN, case("entry", "entry.shared_full"), False, ("欢迎光临", "face", "green")),
        (A.OPEN, case("exit", "exit.monthly_valid"), True, ("一路平安", "face", "green")),
        (
            A.SEND_TO_DISPLAY,
            case("entry", "entry.monthly_expired"),
            False,
            ("您的月卡已过期，请扫码缴费后进场", "qr", "green"),
        ),
        (
            A.SEND_TO_DISPLAY,
            case("entry", "entry.shared_full"),
            False,
            ("您的共享车位已满，该车场不允许临停车辆进场，有需请联系管理处", "vehicles", "yellow"),
        ),
        (
            A.SEND_TO_DISPLAY,
            case("exit", "exit.monthly_expired"),
            False,
            ("您的月卡已过期，请扫码缴费后出场", "qr", "green"),
        ),
        (
            A.QUICK_PAY,
            case("exit", "exit.monthly_lapsed"),
            False,
            ("请扫码缴费后出场", "qr", "green"),
        ),
        (
            A.QUICK_PAY,
            case("exit", "exit.unplated"),
            False,
            ("您的车牌无法识别，请扫码付费后出场", "qr", "green"),
        ),
        (
            A.QUICK_PAY,
            case("exit", "exit.temp_unpaid"),
            False,
            ("请扫码缴费或者出示您的微信付款码", "face", "green"),
        ),
        (
            A.VISITOR_RELEASE,
            case("entry", "entry.temp_forbidden"),
            False,
            ("欢迎光临", "face", "green"),
        ),
    ],
)
def test_each_action_puts_the_manuals_words_on_the_robot(
    action: Action, c: Case, on_pass: bool, expected: tuple[str, str, str]
) -> None:
    shown = screen(action, c, on_pass=on_pass)
    assert shown is not None
    assert (shown.voice, shown.display.kind, str(shown.light)) == expected


def test_close_changes_nothing_on_the_robot() -> None:
    assert screen(A.CLOSE, case("entry", "entry.unplated")) is None


def test_the_id_prompt_is_word_for_word() -> None:
    shown = show_id_screen()
    assert shown.voice == "请出示您的有效证件，对准证件识别区正前方20厘米处，谢谢您的配合！"
    assert shown.display.text == "请出示您的有效证件，对准证件识别区正前方20厘米，谢谢您的配合！"


def test_abnormal_open_evidence_rules() -> None:
    entry, leave = Direction.ENTRY, Direction.EXIT
    assert evidence_problem(entry, "special_vehicle", "警车", 0, 0) is None
    assert evidence_problem(entry, "bribe", "x", 0, 0) == "reason"
    assert evidence_problem(entry, "special_person", "  ", 0, 0) == "note"
    assert evidence_problem(leave, "non_motor", "x", 0, 1) == "id_photos"
    assert evidence_problem(leave, "non_motor", "x", 5, 1) == "id_photos"
    assert evidence_problem(leave, "non_motor", "x", 1, 0) == "scene_photos"
    assert evidence_problem(leave, "non_motor", "x", 4, 4) is None
