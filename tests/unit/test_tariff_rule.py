"""Every way a RULE or a fee input can be wrong names its field and says why."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from eppark.domain.errors import BadInput
from eppark.domain.tariff import (
    Cap,
    Period,
    describe_from_json,
    fee_from_json,
    parse_rule,
)

BASE: dict[str, Any] = {
    "free_minutes": 30,
    "first": {"minutes": 60, "price": 500},
    "unit": {"minutes": 60, "price": 300},
    "cap": {"price": 3000, "per": "24h"},
}
SEGMENTED: dict[str, Any] = {
    "segments": [
        {"from": "08:00", "to": "20:00", "unit": {"minutes": 60, "price": 300}},
        {"from": "20:00", "to": "08:00", "unit": {"minutes": 720, "price": 500}, "cap": 500},
    ]
}


def with_(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``base`` with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    rule = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = rule
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is ...:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return rule


def seg(start: str, end: str, **extra: Any) -> dict[str, Any]:
    """A window with an hourly unit."""
    return {"from": start, "to": end, "unit": {"minutes": 60, "price": 100}, **extra}


INVALID = [
    ("unit-zero-length", with_(BASE, "unit.minutes", 0), "rule.unit.minutes", "positive"),
    ("unit-negative-length", with_(BASE, "unit.minutes", -5), "rule.unit.minutes", "positive"),
    ("first-zero-length", with_(BASE, "first.minutes", 0), "rule.first.minutes", "positive"),
    ("unit-minutes-float", with_(BASE, "unit.minutes", 60.0), "rule.unit.minutes", "whole"),
    ("negative-price", with_(BASE, "unit.price", -1), "rule.unit.price", "negative"),
    ("float-price", with_(BASE, "unit.price", 5.0), "rule.unit.price", "whole number of fen"),
    ("bool-price", with_(BASE, "first.price", True), "rule.first.price", "whole number of fen"),
    ("string-price", with_(BASE, "unit.price", "300"), "rule.unit.price", "whole number of fen"),
    ("unit-missing-price", with_(BASE, "unit.price", ...), "rule.unit.price", "required"),
    ("first-missing-minutes", with_(BASE, "first.minutes", ...), "rule.first.minutes", "required"),
    ("unit-not-object", with_(BASE, "unit", 300), "rule.unit", "JSON object"),
    ("unknown-cap-window", with_(BASE, "cap.per", "week"), "rule.cap.per", "unknown cap window"),
    ("cap-window-not-string", with_(BASE, "cap.per", 24), "rule.cap.per", "unknown cap window"),
    ("cap-missing-price", with_(BASE, "cap.price", ...), "rule.cap.price", "both price and per"),
    ("cap-missing-per", with_(BASE, "cap.per", ...), "rule.cap.per", "both price and per"),
    ("cap-float-price", with_(BASE, "cap.price", 30.5), "rule.cap.price", "whole number of fen"),
    ("cap-negative-price", with_(BASE, "cap.price", -1), "rule.cap.price", "negative"),
    ("cap-not-object", with_(BASE, "cap", 3000), "rule.cap", "JSON object"),
    ("missing-unit", with_(BASE, "unit", ...), "rule.unit", "required unless segments"),
    ("negative-free", with_(BASE, "free_minutes", -1), "rule.free_minutes", "at least 0"),
    ("float-free", with_(BASE, "free_minutes", 1.5), "rule.free_minutes", "whole number"),
    ("bool-free", with_(BASE, "free_minutes", True), "rule.free_minutes", "whole number"),
    (
        "deducted-not-bool",
        with_(BASE, "free_minutes_deducted", "yes"),
        "rule.free_minutes_deducted",
        "true or false",
    ),
    (
        "negative-grace",
        with_(BASE, "exit_grace_minutes", -1),
        "rule.exit_grace_minutes",
        "at least 0",
    ),
    ("unknown-timezone", with_(BASE, "timezone", "Mars/Olympus"), "rule.timezone", "unknown"),
    ("timezone-path-trick", with_(BASE, "timezone", "../etc"), "rule.timezone", "unknown"),
    ("timezone-not-string", with_(BASE, "timezone", 8), "rule.timezone", "string"),
    ("unknown-rule-key", with_(BASE, "caps", {}), "rule.caps", "not a known field"),
    ("unknown-unit-key", with_(BASE, "unit.fen", 1), "rule.unit.fen", "not a known field"),
    ("unknown-cap-key", with_(BASE, "cap.max", 1), "rule.cap.max", "not a known field"),
    (
        "unknown-segment-key",
        with_(SEGMENTED, "segments.0.note", "x"),
        "rule.segments[0].note",
        "not a known field",
    ),
    (
        "segments-overlap",
        with_(SEGMENTED, "segments.0.to", "21:00"),
        "rule.segments[0].to",
        "overlaps rule.segments[1]",
    ),
    (
        "segments-gap",
        with_(SEGMENTED, "segments.0.to", "19:00"),
        "rule.segments[0].to",
        "gap 19:00-20:00",
    ),
    (
        "segments-gap-across-midnight",
        with_(SEGMENTED, "segments.1.to", "07:00"),
        "rule.segments[1].to",
        "gap 07:00-08:00",
    ),
    (
        "segments-same-start",
        {"segments": [seg("08:00", "20:00"), seg("08:00", "08:00")]},
        "rule.segments[1].from",
        "overlaps",
    ),
    (
        "segment-whole-day-beside-another",
        {"segments": [seg("08:00", "08:00"), seg("20:00", "08:00")]},
        "rule.segments[0].to",
        "overlaps",
    ),
    (
        "single-segment-not-whole-day",
        {"segments": [seg("08:00", "20:00")]},
        "rule.segments[0].to",
        "gap 20:00-08:00",
    ),
    ("bad-clock", with_(SEGMENTED, "segments.0.from", "8:00"), "rule.segments[0].from", "HH:MM"),
    ("clock-25h", with_(SEGMENTED, "segments.0.to", "25:00"), "rule.segments[0].to", "HH:MM"),
    ("from-24:00", with_(SEGMENTED, "segments.1.from", "24:00"), "rule.segments[1].from", "HH:MM"),
    ("clock-not-string", with_(SEGMENTED, "segments.0.from", 800), "rule.segments[0].from", "str"),
    (
        "segment-missing-from",
        with_(SEGMENTED, "segments.0.from", ...),
        "rule.segments[0].from",
        "req",
    ),
    (
        "segment-missing-unit",
        with_(SEGMENTED, "segments.0.unit", ...),
        "rule.segments[0].unit",
        "no unit",
    ),
    (
        "segment-bad-unit",
        with_(SEGMENTED, "segments.1.unit.minutes", 0),
        "rule.segments[1].unit.minutes",
        "positive",
    ),
    (
        "segment-negative-cap",
        with_(SEGMENTED, "segments.1.cap", -5),
        "rule.segments[1].cap",
        "negative",
    ),
    ("segment-float-cap", with_(SEGMENTED, "segments.1.cap", 5.0), "rule.segments[1].cap", "fen"),
    (
        "segment-object-cap",
        with_(SEGMENTED, "segments.1.cap", {"price": 500}),
        "rule.segments[1].cap",
        "fen",
    ),
    ("segments-empty", {"unit": BASE["unit"], "segments": []}, "rule.segments", "at least one"),
    ("segments-not-list", {"segments": {"from": "00:00"}}, "rule.segments", "list"),
    ("segment-not-object", {"segments": ["08:00-20:00"]}, "rule.segments[0]", "JSON object"),
    ("rule-not-object", [1, 2], "rule", "JSON object"),
]


@pytest.mark.parametrize(
    ("rule", "field", "reason"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_rule_names_field_and_reason(rule: Any, field: str, reason: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_rule(rule)
    assert caught.value.field == field
    assert reason in caught.value.message


@pytest.mark.parametrize(
    ("rule", "field"), [case[1:3] for case in INVALID[:6]], ids=[c[0] for c in INVALID[:6]]
)
def test_describe_refuses_the_same_rules(rule: Any, field: str) -> None:
    with pytest.raises(BadInput) as caught:
        describe_from_json(rule)
    assert caught.value.field == field


def test_defaults() -> None:
    rule = parse_rule({"unit": {"minutes": 60, "price": 300}})
    assert (rule.free_minutes, rule.free_minutes_deducted) == (0, False)
    assert (rule.timezone, rule.exit_grace_minutes) == ("Asia/Shanghai", 15)
    assert rule.first is None
    assert rule.cap is None
    assert rule.segments == ()


def test_parsed_rule_is_typed() -> None:
    rule = parse_rule(BASE)
    assert rule.unit == Period(60, 300)
    assert rule.first == Period(60, 500)
    assert rule.cap == Cap(3000, "24h")


def test_null_means_absent_for_optional_objects() -> None:
    rule = parse_rule({**BASE, "first": None, "cap": None, "segments": None})
    assert rule.first is None
    assert rule.cap is None
    assert rule.segments == ()


@pytest.mark.parametrize(
    "segments",
    [
        [seg("00:00", "00:00")],
        [seg("08:00", "08:00")],
        [seg("00:00", "12:00"), seg("12:00", "24:00")],
        [seg("20:00", "08:00"), seg("08:00", "12:00"), seg("12:00", "20:00")],
        [seg("23:59", "00:00"), seg("00:00", "23:59")],
    ],
    ids=["whole-day", "whole-day-from-8", "24:00-end", "unordered-three", "one-minute-window"],
)
def test_valid_tilings(segments: list[dict[str, Any]]) -> None:
    assert len(parse_rule({"segments": segments}).segments) == len(segments)


FEE_OK: dict[str, Any] = {
    "rule": BASE,
    "entered_at": "2026-11-27T10:00:00+08:00",
    "at": "2026-11-27T12:00:00+08:00",
    "payments": [{"paid_at": "2026-11-27T11:00:00+08:00", "amount": 500}],
}

BAD_FEE = [
    ("not-object", [], "input", "JSON object"),
    ("missing-rule", with_(FEE_OK, "rule", ...), "rule", "required"),
    ("missing-entered_at", with_(FEE_OK, "entered_at", ...), "entered_at", "required"),
    ("missing-at", with_(FEE_OK, "at", ...), "at", "required"),
    ("at-not-iso", with_(FEE_OK, "at", "noon"), "at", "ISO 8601"),
    ("at-no-offset", with_(FEE_OK, "at", "2026-11-27T12:00:00"), "at", "offset"),
    ("at-before-entry", with_(FEE_OK, "at", "2026-11-27T09:00:00+08:00"), "at", "before"),
    ("at-far-future", with_(FEE_OK, "at", "9500-01-01T00:00:00Z"), "at", "outside the years"),
    ("stay-over-100-years", with_(FEE_OK, "at", "2200-01-01T00:00:00Z"), "at", "100 years"),
    ("rule-error-nested", with_(FEE_OK, "rule.cap.price", 1.5), "rule.cap.price", "fen"),
    ("unknown-key", with_(FEE_OK, "payment", []), "payment", "not a known field"),
    ("payments-not-list", with_(FEE_OK, "payments", {}), "payments", "list"),
    ("payment-not-object", with_(FEE_OK, "payments", [500]), "payments[0]", "JSON object"),
    (
        "payment-missing-amount",
        with_(FEE_OK, "payments.0.amount", ...),
        "payments[0].amount",
        "required",
    ),
    (
        "payment-missing-paid_at",
        with_(FEE_OK, "payments.0.paid_at", ...),
        "payments[0].paid_at",
        "required",
    ),
    (
        "payment-negative",
        with_(FEE_OK, "payments.0.amount", -100),
        "payments[0].amount",
        "negative",
    ),
    ("payment-float", with_(FEE_OK, "payments.0.amount", 5.0), "payments[0].amount", "fen"),
    ("payment-bool", with_(FEE_OK, "payments.0.amount", True), "payments[0].amount", "fen"),
    (
        "payment-unknown-key",
        with_(FEE_OK, "payments.0.method", "wx"),
        "payments[0].method",
        "not a known field",
    ),
    (
        "paid-before-entry",
        with_(FEE_OK, "payments.0.paid_at", "2026-11-27T01:59:59Z"),
        "payments[0].paid_at",
        "outside the stay",
    ),
    (
        "paid-after-at",
        with_(FEE_OK, "payments.0.paid_at", "2026-11-27T12:00:01+08:00"),
        "payments[0].paid_at",
        "outside the stay",
    ),
]


@pytest.mark.parametrize(
    ("body", "field", "reason"), [c[1:] for c in BAD_FEE], ids=[c[0] for c in BAD_FEE]
)
def test_bad_fee_input_names_field_and_reason(body: Any, field: str, reason: str) -> None:
    with pytest.raises(BadInput) as caught:
        fee_from_json(body)
    assert caught.value.field == field
    assert reason in caught.value.message


def test_payments_optional_or_null() -> None:
    for body in (with_(FEE_OK, "payments", ...), with_(FEE_OK, "payments", None)):
        assert fee_from_json(body)["paid"] == 0


def test_paid_at_on_the_stay_bounds_is_fine() -> None:
    body = with_(
        FEE_OK,
        "payments",
        [
            {"paid_at": FEE_OK["entered_at"], "amount": 0},
            {"paid_at": FEE_OK["at"], "amount": 800},
        ],
    )
    assert fee_from_json(body)["within_grace"] is True
