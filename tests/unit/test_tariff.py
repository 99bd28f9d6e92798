"""The `eppark fee` contract, rule by rule (contracts.md, "what a temp stay costs")."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from eppark.domain.errors import BadInput
from eppark.domain.tariff import Payment, compute_fee, fee_from_json, parse_rule

MANUAL: dict[str, Any] = {
    "free_minutes": 30,
    "first": {"minutes": 60, "price": 500},
    "unit": {"minutes": 60, "price": 300},
    "cap": {"price": 3000, "per": "24h"},
}
MANUAL_TEXT = "30分钟内免费，1小时内5元，之后每小时3元，30元封顶"
DAY_NIGHT: dict[str, Any] = {
    "segments": [
        {"from": "08:00", "to": "20:00", "unit": {"minutes": 60, "price": 300}},
        {"from": "20:00", "to": "08:00", "unit": {"minutes": 720, "price": 500}, "cap": 500},
    ]
}
ENTRY = "2026-11-27T10:00:00+08:00"


def t(text: str) -> datetime:
    """An ISO time."""
    return datetime.fromisoformat(text)


def cost(rule: dict[str, Any], entered_at: str, at: str | timedelta) -> int:
    """The total of a stay; ``at`` may be a length after entry."""
    end = t(entered_at) + at if isinstance(at, timedelta) else t(at)
    return compute_fee(parse_rule(rule), t(entered_at), end).total


def minutes(n: float) -> timedelta:
    """A length in minutes."""
    return timedelta(minutes=n)


# The manual's example -------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "total"),
    [(30, 0), (31, 500), (61, 800), (600, 3000), (1500, 3300)],
    ids=["30min", "31min", "61min", "10h", "25h"],
)
def test_manual_example(length: int, total: int) -> None:
    body = {
        "rule": MANUAL,
        "entered_at": ENTRY,
        "at": (t(ENTRY) + minutes(length)).isoformat(),
    }
    assert fee_from_json(body) == {
        "total": total,
        "paid": 0,
        "due": total,
        "within_grace": False,
        "text": MANUAL_TEXT,
    }


def test_contract_example_rule_with_unit_and_segments_is_accepted() -> None:
    rule = {**MANUAL, **DAY_NIGHT, "timezone": "Asia/Shanghai", "exit_grace_minutes": 15}
    rule["free_minutes_deducted"] = False
    answer = fee_from_json({"rule": rule, "entered_at": ENTRY, "at": "2026-11-27T12:00:00+08:00"})
    assert answer["total"] == 500 + 300


# Rule 1: free minutes --------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "total"),
    [
        (minutes(0), 0),
        (minutes(30), 0),
        (minutes(30) + timedelta(seconds=1), 500),
        (minutes(31), 500),
    ],
    ids=["zero", "exactly-free", "free-plus-1s", "free-plus-1min"],
)
def test_rule1_free_minutes(length: timedelta, total: int) -> None:
    assert cost(MANUAL, ENTRY, length) == total


@pytest.mark.parametrize(
    ("deducted", "length", "total"),
    [
        (False, 60, 500),
        (False, 61, 800),
        (True, 31, 500),
        (True, 90, 500),
        (True, 91, 800),
    ],
)
def test_rule1_charging_starts_after_deducted_free_minutes(
    deducted: bool, length: int, total: int
) -> None:
    rule = {**MANUAL, "free_minutes_deducted": deducted}
    assert cost(rule, ENTRY, minutes(length)) == total


# Rule 2: first period once, then units, every started unit in full -----------


@pytest.mark.parametrize(
    ("length", "total"),
    [
        (timedelta(seconds=1), 300),
        (minutes(60), 300),
        (minutes(60) + timedelta(microseconds=1), 600),
        (minutes(120), 600),
        (minutes(121), 900),
    ],
    ids=["1s", "one-unit-edge", "edge-plus-1us", "two-unit-edge", "third-unit"],
)
def test_rule2_every_started_unit_is_charged_in_full(length: timedelta, total: int) -> None:
    assert cost({"unit": {"minutes": 60, "price": 300}}, ENTRY, length) == total


def test_rule2_first_period_longer_than_the_stay_is_charged_in_full() -> None:
    rule = {"first": {"minutes": 120, "price": 500}, "unit": {"minutes": 60, "price": 300}}
    assert cost(rule, ENTRY, minutes(10)) == 500


def test_rule2_first_period_is_charged_once() -> None:
    assert cost({**MANUAL, "cap": None}, ENTRY, minutes(180)) == 500 + 300 + 300


# Rule 3: segments -------------------------------------------------------------


def test_rule3_unit_is_cut_at_a_window_edge_and_charged_in_full() -> None:
    assert cost(DAY_NIGHT, "2026-11-27T19:30:00+08:00", "2026-11-27T20:30:00+08:00") == 800


def test_rule3_night_window_wraps_midnight() -> None:
    assert cost(DAY_NIGHT, "2026-11-27T22:00:00+08:00", "2026-11-28T09:00:00+08:00") == 800


def test_rule3_stay_ending_exactly_on_a_window_edge() -> None:
    assert cost(DAY_NIGHT, "2026-11-27T18:00:00+08:00", "2026-11-27T20:00:00+08:00") == 600


def test_rule3_first_period_is_cut_at_a_window_edge() -> None:
    rule = {**DAY_NIGHT, "first": {"minutes": 60, "price": 500}}
    assert cost(rule, "2026-11-27T19:30:00+08:00", "2026-11-27T20:10:00+08:00") == 500 + 500


def test_rule3_first_period_counts_toward_its_window_cap() -> None:
    rule = {
        "first": {"minutes": 60, "price": 500},
        "segments": [
            {"from": "08:00", "to": "20:00", "unit": {"minutes": 60, "price": 300}, "cap": 600},
            {"from": "20:00", "to": "08:00", "unit": {"minutes": 60, "price": 0}},
        ],
    }
    assert cost(rule, "2026-11-27T10:00:00+08:00", "2026-11-27T12:30:00+08:00") == 600


def test_rule3_window_cap_bounds_each_stretch() -> None:
    rule = {
        "segments": [
            {"from": "08:00", "to": "20:00", "unit": {"minutes": 60, "price": 300}},
            {"from": "20:00", "to": "08:00", "unit": {"minutes": 60, "price": 200}, "cap": 1000},
        ]
    }
    assert cost(rule, "2026-11-27T20:00:00+08:00", "2026-11-28T08:00:00+08:00") == 1000
    two_nights = cost(rule, "2026-11-27T20:00:00+08:00", "2026-11-29T08:00:00+08:00")
    assert two_nights == 1000 + 12 * 300 + 1000


def test_rule3_segments_mixed_offsets_in_one_input() -> None:
    assert cost(DAY_NIGHT, "2026-11-27T12:00:00Z", "2026-11-28T08:00:00+08:00") == 500


def test_rule3_segment_without_unit_uses_the_rules_unit() -> None:
    rule = {
        "unit": {"minutes": 30, "price": 100},
        "segments": [
            {"from": "00:00", "to": "12:00"},
            {"from": "12:00", "to": "24:00", "unit": {"minutes": 60, "price": 400}},
        ],
    }
    assert cost(rule, "2026-11-27T11:00:00+08:00", "2026-11-27T12:30:00+08:00") == 200 + 400


# Rule 4: 24 h from entry vs calendar day ------------------------------------

HOURLY = {"unit": {"minutes": 60, "price": 300}}


@pytest.mark.parametrize(("per", "total"), [("24h", 1500), ("day", 1200 + 1500)])
def test_rule4_cap_per_24h_vs_per_day(per: str, total: int) -> None:
    rule = {**HOURLY, "cap": {"price": 1500, "per": per}}
    assert cost(rule, "2026-11-27T20:00:00+08:00", "2026-11-28T06:00:00+08:00") == total


def test_rule4_24h_windows_count_from_entry_not_charging_start() -> None:
    rule = {
        "free_minutes": 60,
        "free_minutes_deducted": True,
        "unit": {"minutes": 60, "price": 100},
        "cap": {"price": 500, "per": "24h"},
    }
    assert cost(rule, ENTRY, minutes(25 * 60 + 30)) == 500 + 200


def test_rule4_day_cap_uses_the_rules_timezone() -> None:
    rule = {**HOURLY, "cap": {"price": 1500, "per": "day"}, "timezone": "UTC"}
    # 20:00+08:00 → 06:00+08:00 is 12:00Z → 22:00Z: one UTC day.
    assert cost(rule, "2026-11-27T20:00:00+08:00", "2026-11-28T06:00:00+08:00") == 1500


# Rule 5: caps unit by unit ---------------------------------------------------


def test_rule5_last_unit_is_cut_down_to_the_cap() -> None:
    rule = {**HOURLY, "cap": {"price": 1000, "per": "24h"}}
    assert cost(rule, ENTRY, minutes(3 * 60 + 1)) == 1000
    assert cost(rule, ENTRY, minutes(3 * 60)) == 900


def test_rule5_window_cap_and_24h_cap_together() -> None:
    rule: dict[str, Any] = {
        "cap": {"price": 900, "per": "24h"},
        "segments": [
            {"from": "08:00", "to": "20:00", "unit": {"minutes": 60, "price": 300}},
            {"from": "20:00", "to": "08:00", "unit": {"minutes": 60, "price": 200}, "cap": 500},
        ],
    }
    # 300, 300, 200, then 100 (24 h cap), then nothing.
    assert cost(rule, "2026-11-27T18:00:00+08:00", "2026-11-27T23:00:00+08:00") == 900
    rule["cap"] = None
    # 300, 300, then the night: 200, 200, 100 (window cap).
    assert cost(rule, "2026-11-27T18:00:00+08:00", "2026-11-27T23:00:00+08:00") == 1100


# Rule 6: payments and the exit grace ----------------------------------------


def fee(at: str, payments: list[tuple[str, int]], **rule: Any) -> dict[str, Any]:
    """The JSON answer for the manual rule entered at 10:00."""
    return fee_from_json(
        {
            "rule": {**MANUAL, **rule},
            "entered_at": ENTRY,
            "at": at,
            "payments": [{"paid_at": when, "amount": amount} for when, amount in payments],
        }
    )


def test_rule6_paid_then_leaving_within_grace_owes_nothing() -> None:
    answer = fee("2026-11-27T12:05:00+08:00", [("2026-11-27T11:55:00+08:00", 800)])
    assert (answer["total"], answer["paid"], answer["due"]) == (1100, 800, 0)
    assert answer["within_grace"] is True


def test_rule6_grace_boundary_is_inclusive() -> None:
    paid = [("2026-11-27T11:55:00+08:00", 800)]
    assert fee("2026-11-27T12:10:00+08:00", paid)["within_grace"] is True
    late = fee("2026-11-27T12:10:01+08:00", paid)
    assert (late["due"], late["within_grace"]) == (300, False)


def test_rule6_after_grace_owes_the_difference() -> None:
    answer = fee("2026-11-27T12:15:00+08:00", [("2026-11-27T11:10:00+08:00", 800)])
    assert (answer["total"], answer["due"], answer["within_grace"]) == (1100, 300, False)


def test_rule6_partial_payments_add_up() -> None:
    paid = [("2026-11-27T10:50:00+08:00", 300), ("2026-11-27T11:00:00+08:00", 200)]
    answer = fee("2026-11-27T11:05:00+08:00", paid)
    assert (answer["paid"], answer["due"], answer["within_grace"]) == (500, 0, True)


def test_rule6_short_payment_is_not_grace() -> None:
    answer = fee("2026-11-27T11:05:00+08:00", [("2026-11-27T11:00:00+08:00", 300)])
    assert (answer["total"], answer["due"], answer["within_grace"]) == (800, 500, False)


def test_rule6_overpayment_never_makes_due_negative() -> None:
    answer = fee("2026-11-27T15:00:00+08:00", [("2026-11-27T11:00:00+08:00", 5000)])
    assert (answer["due"], answer["within_grace"]) == (0, False)


def test_rule6_zero_grace_means_leaving_at_the_payment_instant() -> None:
    paid = [("2026-11-27T11:00:00+08:00", 500)]
    assert fee("2026-11-27T11:00:00+08:00", paid, exit_grace_minutes=0)["within_grace"] is True
    assert fee("2026-11-27T11:00:01+08:00", paid, exit_grace_minutes=0)["due"] == 300


def test_rule6_no_payments_is_never_within_grace() -> None:
    assert fee("2026-11-27T10:10:00+08:00", [])["within_grace"] is False


def test_rule6_payment_offsets_may_differ() -> None:
    answer = fee("2026-11-27T12:05:00+08:00", [("2026-11-27T03:55:00Z", 800)])
    assert (answer["due"], answer["within_grace"]) == (0, True)


@pytest.mark.parametrize(
    "paid_at", ["2026-11-27T09:59:59+08:00", "2026-11-27T12:00:01+08:00"], ids=["before", "after"]
)
def test_rule6_paid_at_outside_the_stay_is_bad_input(paid_at: str) -> None:
    with pytest.raises(BadInput) as caught:
        fee("2026-11-27T12:00:00+08:00", [("2026-11-27T11:00:00+08:00", 100), (paid_at, 100)])
    assert caught.value.field == "payments[1].paid_at"
    assert "outside the stay" in caught.value.message


def test_compute_fee_takes_typed_payments() -> None:
    result = compute_fee(
        parse_rule(MANUAL),
        t(ENTRY),
        t("2026-11-27T11:05:00+08:00"),
        [Payment(t("2026-11-27T11:00:00+08:00"), 500)],
    )
    assert (result.total, result.paid, result.due, result.within_grace) == (800, 500, 0, True)
    assert result.text == MANUAL_TEXT


# Time zones ------------------------------------------------------------------

BERLIN_NIGHTS: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "segments": [
        {"from": "08:00", "to": "20:00", "unit": {"minutes": 60, "price": 200}},
        {"from": "20:00", "to": "08:00", "unit": {"minutes": 60, "price": 100}},
    ],
}


@pytest.mark.parametrize(
    ("entered_at", "at", "total"),
    [
        ("2026-03-28T20:00:00+01:00", "2026-03-29T08:00:00+02:00", 1100),
        ("2026-10-24T20:00:00+02:00", "2026-10-25T08:00:00+01:00", 1300),
        ("2026-11-27T20:00:00+01:00", "2026-11-28T08:00:00+01:00", 1200),
    ],
    ids=["spring-forward-night-11h", "fall-back-night-13h", "plain-night-12h"],
)
def test_dst_nights_are_as_long_as_they_really_are(entered_at: str, at: str, total: int) -> None:
    assert cost(BERLIN_NIGHTS, entered_at, at) == total


def test_dst_edge_inside_the_skipped_hour_falls_at_the_jump() -> None:
    rule = {
        "timezone": "Europe/Berlin",
        "segments": [
            {"from": "02:30", "to": "14:00", "unit": {"minutes": 60, "price": 500}},
            {"from": "14:00", "to": "02:30", "unit": {"minutes": 60, "price": 100}},
        ],
    }
    # 23:00Z, 00:00Z in the 14:00 window; from 01:00Z (03:00+02:00) the 02:30 window.
    assert cost(rule, "2026-03-29T00:00:00+01:00", "2026-03-29T03:30:00+02:00") == 700


def test_dst_day_cap_covers_a_23_hour_day() -> None:
    rule = {"timezone": "Europe/Berlin", "unit": {"minutes": 60, "price": 100}}
    rule["cap"] = {"price": 2300, "per": "day"}
    # The whole of 29 March (23 h) is one calendar day: 23 units, all under the cap.
    assert cost(rule, "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00") == 2300
    rule["cap"] = {"price": 2000, "per": "day"}
    assert cost(rule, "2026-03-29T00:00:00+01:00", "2026-03-30T01:00:00+02:00") == 2100


def test_long_stay_over_a_dst_change_is_periodic_around_it() -> None:
    rule = {**BERLIN_NIGHTS, "cap": {"price": 1500, "per": "day"}}
    total = cost(rule, "2026-03-01T09:00:00+01:00", "2026-04-30T09:00:00+02:00")
    # 1 March..29 April: 60 calendar days at the cap; 30 April 00:00-09:00: 8 × 1元 + 2元.
    assert total == 60 * 1500 + 1000


# Impossible input ------------------------------------------------------------


def test_at_before_entered_at_is_bad_input() -> None:
    with pytest.raises(BadInput) as caught:
        cost(MANUAL, ENTRY, "2026-11-27T09:59:59+08:00")
    assert caught.value.field == "at"
    assert "before entered_at" in caught.value.message


def test_zero_length_stay_is_free() -> None:
    assert cost({"unit": {"minutes": 60, "price": 300}}, ENTRY, ENTRY) == 0
