"""The gate decision engine against contracts.md "eppark decide" and scenarios.md §1."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eppark.demo import examples
from eppark.domain.decide import decide_from_json
from eppark.domain.errors import BadInput
from eppark.domain.scenarios import NO_ENTRY_RECORD_TEXT, NO_ENTRY_RECORD_VOICE

NOW = datetime.fromisoformat("2026-11-27T08:00:00+08:00")
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)

# scenario id → (voice, display, light, open, expected_action), word for word from scenarios.md
TABLE: dict[str, tuple[str, dict[str, Any], str, bool, str | None]] = {
    "entry.monthly_valid": ("欢迎回家", {"kind": "face", "face": "smile"}, "green", True, None),
    "entry.unplated": (
        "您的车牌无法识别，请扫码后开闸进场，出场前请在出口处扫码出场",
        {"kind": "qr", "qr": "unplated_entry"},
        "green",
        False,
        "unplated_entry_scan",
    ),
    "entry.monthly_expired": (
        "您的月卡已过期，请扫码缴费后进场",
        {"kind": "qr", "qr": "monthly_renewal"},
        "green",
        False,
        "monthly_order",
    ),
    "entry.temp_allowed": ("欢迎光临", {"kind": "face", "face": "smile"}, "green", True, None),
    "entry.temp_forbidden": (
        "该停车场不允许临停车辆进场，有需请联系管理处",
        {"kind": "text", "text": "该车场禁止临停"},
        "yellow",
        False,
        "leave",
    ),
    "entry.shared_full": (
        "您的共享车位已满，该车场不允许临停车辆进场，有需请联系管理处",
        {"kind": "vehicles"},
        "yellow",
        False,
        "leave",
    ),
    "exit.monthly_valid": ("一路平安", {"kind": "face", "face": "smile"}, "green", True, None),
    "exit.monthly_expired_grace": (
        "您的月卡已过期，注意及时缴费",
        {"kind": "qr", "qr": "monthly_renewal"},
        "green",
        True,
        None,
    ),
    "exit.monthly_expired": (
        "您的月卡已过期，请扫码缴费",
        {"kind": "qr", "qr": "monthly_renewal"},
        "green",
        False,
        "monthly_order",
    ),
    "exit.monthly_lapsed": (
        "您的月卡超期未缴费，请联系管理处重新排队申请月卡",
        {"kind": "qr", "qr": "temp_payment"},
        "yellow",
        False,
        "temp_order",
    ),
    "exit.unplated": (
        "无牌车请扫码付费后出场",
        {"kind": "qr", "qr": "unplated_exit"},
        "green",
        False,
        "unplated_exit_order",
    ),
    "exit.temp_unpaid": (
        "请扫码缴费后出场",
        {"kind": "qr", "qr": "temp_payment"},
        "green",
        False,
        "temp_order",
    ),
    "exit.shared_full_unpaid": (
        "请扫码缴费后出场",
        {"kind": "qr", "qr": "temp_payment"},
        "green",
        False,
        "temp_order",
    ),
    "exit.temp_paid": ("一路平安", {"kind": "face", "face": "smile"}, "green", True, None),
    "exit.no_entry_record": (
        NO_ENTRY_RECORD_VOICE,
        {"kind": "text", "text": NO_ENTRY_RECORD_TEXT},
        "yellow",
        False,
        "agent",
    ),
}


def situation(
    direction: str = "entry",
    plate: str | None = "粤B12345",
    *,
    confirm: bool = True,
    until: timedelta | None = None,
    spaces: int = 1,
    in_lot: int = 0,
    session: dict[str, Any] | None = None,
    now: datetime = NOW,
    lot: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A contract situation; ``until`` is valid_until − now (None: no pass)."""
    body: dict[str, Any] = {
        "now": now.isoformat(),
        "direction": direction,
        "plate": plate,
        "lot": {"temp_entry_confirmation": confirm, **(lot or {})},
        "pass": None
        if until is None
        else {
            "valid_from": "2026-01-01T00:00:00+08:00",
            "valid_until": (now + until).isoformat(),
            "spaces": spaces,
            "group_in_lot": in_lot,
        },
    }
    if direction == "exit":
        body["session"] = session
    return body


def scenario(body: dict[str, Any]) -> str:
    return str(decide_from_json(body)["scenario"])


# --- every scenario, word for word -----------------------------------------------------------


@pytest.mark.parametrize("example", list(examples()), ids=lambda e: e.expected)
def test_every_scenario_says_shows_and_lights_as_the_manual(example: Any) -> None:
    decision = decide_from_json(example.situation)
    voice, display, light, opens, action = TABLE[example.expected]
    assert decision == {
        "scenario": example.expected,
        "open": opens,
        "voice": voice,
        "display": display,
        "light": light,
        "expected_action": action,
    }


def test_examples_cover_every_scenario_id() -> None:
    assert sorted(e.expected for e in examples()) == sorted(TABLE)


def test_no_entry_record_has_its_own_non_empty_wording() -> None:
    assert NO_ENTRY_RECORD_VOICE.strip()
    assert NO_ENTRY_RECORD_TEXT.strip()


# --- entry rules -------------------------------------------------------------------------------


@pytest.mark.parametrize("plate", [None, "", "   ", "\t"])
def test_entry_rule1_no_plate_is_unplated_even_with_other_facts(plate: str | None) -> None:
    assert scenario(situation(plate=plate, until=30 * DAY)) == "entry.unplated"


def test_entry_rule2_valid_pass_with_free_group_space_enters() -> None:
    assert scenario(situation(until=DAY, spaces=2, in_lot=1)) == "entry.monthly_valid"


def test_entry_rule2_pass_valid_until_this_very_second_is_valid() -> None:
    assert scenario(situation(until=timedelta(0))) == "entry.monthly_valid"


def test_entry_rule2_group_full_with_confirmation_is_shared_full() -> None:
    assert scenario(situation(until=DAY, spaces=2, in_lot=2)) == "entry.shared_full"


def test_entry_rule2_group_full_without_confirmation_enters_as_temp() -> None:
    body = situation(until=DAY, spaces=2, in_lot=3, confirm=False)
    assert scenario(body) == "entry.temp_allowed"


@pytest.mark.parametrize(
    ("expired", "expected"),
    [
        (SECOND, "entry.monthly_expired"),
        (3 * DAY, "entry.monthly_expired"),
        (7 * DAY, "entry.monthly_expired"),  # exactly 168 h: still within the payable days
        (7 * DAY + SECOND, "entry.temp_forbidden"),  # treated as a stranger
    ],
)
def test_entry_rule3_expired_within_payable_days(expired: timedelta, expected: str) -> None:
    assert scenario(situation(until=-expired)) == expected


def test_entry_rule3_long_expired_pass_is_a_visitor_where_visitors_may_enter() -> None:
    assert scenario(situation(until=-30 * DAY, confirm=False)) == "entry.temp_allowed"


def test_entry_rule4_stranger_with_confirmation_is_refused() -> None:
    assert scenario(situation(plate="粤B88888")) == "entry.temp_forbidden"


def test_entry_rule5_stranger_without_confirmation_enters() -> None:
    assert scenario(situation(plate="粤B88888", confirm=False)) == "entry.temp_allowed"


def test_pass_not_started_yet_counts_as_none() -> None:
    body = situation(until=60 * DAY)
    body["pass"]["valid_from"] = (NOW + DAY).isoformat()
    assert scenario(body) == "entry.temp_forbidden"
    body = situation("exit", until=60 * DAY, session=None)
    body["pass"]["valid_from"] = (NOW + SECOND).isoformat()
    assert scenario(body) == "exit.no_entry_record"


def test_pass_starting_this_very_second_is_valid() -> None:
    body = situation(until=DAY)
    body["pass"]["valid_from"] = NOW.isoformat()
    assert scenario(body) == "entry.monthly_valid"


def test_session_is_ignored_on_entry_even_when_malformed() -> None:
    body = situation(until=DAY)
    body["session"] = {"as": "nonsense"}
    assert scenario(body) == "entry.monthly_valid"


# --- exit rules --------------------------------------------------------------------------------

PASS_SESSION = {"as": "pass", "due": 0}
TEMP_OWING = {"as": "temp", "due": 800, "entered_at": "2026-11-27T06:00:00+08:00"}
TEMP_PAID = {"as": "temp", "due": 0}


@pytest.mark.parametrize("plate", [None, "", " "])
def test_exit_rule1_no_plate_is_unplated(plate: str | None) -> None:
    assert scenario(situation("exit", plate, until=DAY, session=PASS_SESSION)) == "exit.unplated"


@pytest.mark.parametrize("session", [None, PASS_SESSION])
@pytest.mark.parametrize(
    ("until", "expected"),
    [
        (DAY, "exit.monthly_valid"),
        (timedelta(0), "exit.monthly_valid"),
        (-SECOND, "exit.monthly_expired_grace"),
        (-3 * DAY, "exit.monthly_expired_grace"),  # exactly 72 h
        (-3 * DAY - SECOND, "exit.monthly_expired"),
        (-7 * DAY, "exit.monthly_expired"),  # exactly 168 h
        (-7 * DAY - SECOND, "exit.monthly_lapsed"),
        (-200 * DAY, "exit.monthly_lapsed"),
    ],
)
def test_exit_rule2_pass_holder_by_expiry(
    until: timedelta, expected: str, session: dict[str, Any] | None
) -> None:
    assert scenario(situation("exit", until=until, session=session)) == expected


def test_exit_rule2_grace_opens_after_the_prompt() -> None:
    decision = decide_from_json(situation("exit", until=-DAY, session=PASS_SESSION))
    assert decision["open"] is True


def test_exit_rule3_lapsed_pass_that_entered_as_temp_is_lapsed() -> None:
    body = situation("exit", until=-8 * DAY, session=TEMP_OWING)
    assert scenario(body) == "exit.monthly_lapsed"


def test_exit_rule4_stranger_without_entry_record() -> None:
    assert scenario(situation("exit", plate="粤B66666", session=None)) == "exit.no_entry_record"


def test_exit_rule5_temp_car_owing_is_unpaid() -> None:
    assert scenario(situation("exit", session=TEMP_OWING)) == "exit.temp_unpaid"


def test_exit_rule5_shared_space_car_that_entered_as_temp_owing() -> None:
    body = situation("exit", until=DAY, spaces=1, in_lot=1, session=TEMP_OWING)
    assert scenario(body) == "exit.shared_full_unpaid"


def test_exit_rule5_expired_pass_entered_as_temp_owing_is_temp_unpaid() -> None:
    body = situation("exit", until=-5 * DAY, session=TEMP_OWING)
    assert scenario(body) == "exit.temp_unpaid"


def test_exit_rule6_temp_car_with_nothing_due_leaves() -> None:
    assert scenario(situation("exit", session=TEMP_PAID)) == "exit.temp_paid"
    body = situation("exit", until=DAY, session=TEMP_PAID)
    assert scenario(body) == "exit.temp_paid"


# --- lot thresholds and time zones ---------------------------------------------------------------


def test_lot_overrides_grace_and_payable_days() -> None:
    lot = {"expired_grace_days": 1, "expired_payable_days": 2}
    base: dict[str, Any] = {"session": PASS_SESSION, "lot": lot}
    assert scenario(situation("exit", until=-DAY, **base)) == "exit.monthly_expired_grace"
    assert scenario(situation("exit", until=-DAY - SECOND, **base)) == "exit.monthly_expired"
    assert scenario(situation("exit", until=-2 * DAY, **base)) == "exit.monthly_expired"
    assert scenario(situation("exit", until=-2 * DAY - SECOND, **base)) == "exit.monthly_lapsed"
    assert scenario(situation(until=-2 * DAY - SECOND, lot=lot)) == "entry.temp_forbidden"


def test_zero_day_thresholds_mean_no_grace_at_all() -> None:
    lot = {"expired_grace_days": 0, "expired_payable_days": 0}
    assert scenario(situation("exit", until=-SECOND, session=None, lot=lot)) == (
        "exit.monthly_lapsed"
    )


def test_equal_grace_and_payable_days_are_allowed() -> None:
    lot = {"expired_grace_days": 5, "expired_payable_days": 5}
    assert scenario(situation("exit", until=-5 * DAY, session=None, lot=lot)) == (
        "exit.monthly_expired_grace"
    )


def test_times_in_different_offsets_compare_as_instants() -> None:
    # valid_until 23:59:59 Beijing time is 15:59:59 UTC; "now" given in UTC.
    body = situation("exit", session=PASS_SESSION, until=DAY)
    body["pass"]["valid_until"] = "2026-11-24T23:59:59+08:00"
    body["now"] = "2026-11-27T15:59:59Z"  # exactly 72 h later
    assert scenario(body) == "exit.monthly_expired_grace"
    body["now"] = "2026-11-27T16:00:00+00:00"
    assert scenario(body) == "exit.monthly_expired"
    body["now"] = "2026-11-27T11:00:00-05:00"  # 16:00 UTC as well
    assert scenario(body) == "exit.monthly_expired"


@given(
    direction=st.sampled_from(["entry", "exit"]),
    plate=st.one_of(st.none(), st.sampled_from(["", "粤B12345", "粤BD12345"])),
    confirm=st.booleans(),
    until_h=st.one_of(st.none(), st.integers(-24 * 30, 24 * 30)),
    spaces=st.integers(1, 3),
    in_lot=st.integers(0, 4),
    session=st.one_of(
        st.none(),
        st.fixed_dictionaries({"as": st.sampled_from(["pass", "temp"]), "due": st.integers(0, 9)}),
    ),
)
def test_engine_is_total_and_deterministic(
    direction: str,
    plate: str | None,
    confirm: bool,
    until_h: int | None,
    spaces: int,
    in_lot: int,
    session: dict[str, Any] | None,
) -> None:
    until = None if until_h is None else timedelta(hours=until_h)
    body = situation(
        direction,
        plate,
        confirm=confirm,
        until=until,
        spaces=spaces,
        in_lot=in_lot,
        session=session,
    )
    first = decide_from_json(copy.deepcopy(body))
    assert first == decide_from_json(body)
    assert first["scenario"].startswith(direction + ".")
    assert first["open"] == TABLE[first["scenario"]][3]
    if first["open"]:
        assert first["light"] == "green"


# --- bad input ----------------------------------------------------------------------------------


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


def _with(body: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


FULL_EXIT = situation("exit", until=DAY, session=TEMP_OWING)

BAD_INPUTS = [
    ("not an object", ["now"], "input"),
    ("missing now", _without(FULL_EXIT, "now"), "now"),
    ("missing direction", _without(FULL_EXIT, "direction"), "direction"),
    ("missing plate", _without(FULL_EXIT, "plate"), "plate"),
    ("missing lot", _without(FULL_EXIT, "lot"), "lot"),
    ("missing pass key", _without(FULL_EXIT, "pass"), "pass"),
    ("missing session key on exit", _without(FULL_EXIT, "session"), "session"),
    (
        "missing confirmation",
        _without(FULL_EXIT, "lot", "temp_entry_confirmation"),
        "lot.temp_entry_confirmation",
    ),
    (
        "confirmation as string",
        _with(FULL_EXIT, "yes", "lot", "temp_entry_confirmation"),
        "lot.temp_entry_confirmation",
    ),
    ("bad direction", _with(FULL_EXIT, "in", "direction"), "direction"),
    ("plate as number", _with(FULL_EXIT, 12345, "plate"), "plate"),
    ("impossible date", _with(FULL_EXIT, "2026-02-30T08:00:00+08:00", "now"), "now"),
    ("hour 25", _with(FULL_EXIT, "2026-11-27T25:00:00+08:00", "now"), "now"),
    ("no offset", _with(FULL_EXIT, "2026-11-27T08:00:00", "now"), "now"),
    ("time as number", _with(FULL_EXIT, 1700000000, "now"), "now"),
    ("pass not object", _with(FULL_EXIT, "粤B12345", "pass"), "pass"),
    ("pass without valid_until", _without(FULL_EXIT, "pass", "valid_until"), "pass.valid_until"),
    ("pass without valid_from", _without(FULL_EXIT, "pass", "valid_from"), "pass.valid_from"),
    (
        "pass ends before it starts",
        _with(FULL_EXIT, "2025-01-01T00:00:00+08:00", "pass", "valid_until"),
        "pass.valid_until",
    ),
    ("zero spaces", _with(FULL_EXIT, 0, "pass", "spaces"), "pass.spaces"),
    ("fractional spaces", _with(FULL_EXIT, 1.5, "pass", "spaces"), "pass.spaces"),
    ("negative group_in_lot", _with(FULL_EXIT, -1, "pass", "group_in_lot"), "pass.group_in_lot"),
    (
        "grace as float",
        _with(FULL_EXIT, 3.5, "lot", "expired_grace_days"),
        "lot.expired_grace_days",
    ),
    (
        "negative payable",
        _with(FULL_EXIT, -1, "lot", "expired_payable_days"),
        "lot.expired_payable_days",
    ),
    (
        "grace above payable",
        _with(FULL_EXIT, 8, "lot", "expired_grace_days"),
        "lot.expired_grace_days",
    ),
    ("session without as", _without(FULL_EXIT, "session", "as"), "session.as"),
    ("session without due", _without(FULL_EXIT, "session", "due"), "session.due"),
    ("session as unknown", _with(FULL_EXIT, "vip", "session", "as"), "session.as"),
    ("negative due", _with(FULL_EXIT, -100, "session", "due"), "session.due"),
    ("due in yuan", _with(FULL_EXIT, 8.5, "session", "due"), "session.due"),
    ("due as bool", _with(FULL_EXIT, True, "session", "due"), "session.due"),
    (
        "entered after now",
        _with(FULL_EXIT, "2026-11-27T09:00:00+08:00", "session", "entered_at"),
        "session.entered_at",
    ),
    (
        "entered_at garbage",
        _with(FULL_EXIT, "yesterday", "session", "entered_at"),
        "session.entered_at",
    ),
]


@pytest.mark.parametrize(
    ("body", "field"), [(b, f) for _, b, f in BAD_INPUTS], ids=[name for name, _, _ in BAD_INPUTS]
)
def test_bad_input_names_the_field(body: Any, field: str) -> None:
    with pytest.raises(BadInput) as caught:
        decide_from_json(body)
    assert caught.value.field == field
    assert str(caught.value).startswith(field + ": ")
