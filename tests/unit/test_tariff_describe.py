"""The rule's Chinese text (``eppark fee describe``)."""

from __future__ import annotations

from typing import Any

import pytest

from eppark.domain.tariff import describe, describe_from_json, parse_rule
from eppark.domain.tariff.describe import span, yuan

HOUR_3 = {"minutes": 60, "price": 300}


def test_manual_rule_text_is_word_for_word() -> None:
    rule = {
        "free_minutes": 30,
        "first": {"minutes": 60, "price": 500},
        "unit": HOUR_3,
        "cap": {"price": 3000, "per": "24h"},
    }
    assert describe_from_json(rule) == {"text": "30分钟内免费，1小时内5元，之后每小时3元，30元封顶"}


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("unit-only", {"unit": HOUR_3}, "每小时3元"),
    ("day-cap", {"unit": HOUR_3, "cap": {"price": 3000, "per": "day"}}, "每小时3元，每天30元封顶"),
    (
        "deducted",
        {"free_minutes": 15, "free_minutes_deducted": True, "unit": HOUR_3},
        "15分钟内免费（超时后免费时长不计费），每小时3元",
    ),
    ("half-yuan", {"unit": {"minutes": 30, "price": 250}}, "每30分钟2.5元"),
    ("fen", {"unit": {"minutes": 1, "price": 205}}, "每分钟2.05元"),
    ("ninety-minutes", {"unit": {"minutes": 90, "price": 500}}, "每90分钟5元"),
    ("24-hours", {"unit": {"minutes": 1440, "price": 5000}}, "每24小时50元"),
    ("days", {"unit": {"minutes": 2880, "price": 5000}}, "每2天50元"),
    (
        "free-first",
        {"first": {"minutes": 120, "price": 0}, "unit": HOUR_3},
        "2小时内免费，之后每小时3元",
    ),
    (
        "zero-unit",
        {"free_minutes": 60, "unit": {"minutes": 60, "price": 0}},
        "1小时内免费，之后免费",
    ),
    (
        "segments",
        {
            "segments": [
                {"from": "08:00", "to": "20:00", "unit": HOUR_3},
                {
                    "from": "20:00",
                    "to": "08:00",
                    "unit": {"minutes": 720, "price": 500},
                    "cap": 500,
                },
            ]
        },
        "08:00-20:00每小时3元；20:00-08:00每12小时5元，最高5元",
    ),
    (
        "segments-full",
        {
            "free_minutes": 30,
            "first": {"minutes": 60, "price": 500},
            "cap": {"price": 3000, "per": "day"},
            "segments": [
                {"from": "08:00", "to": "20:00", "unit": HOUR_3},
                {"from": "20:00", "to": "24:00", "unit": {"minutes": 60, "price": 0}},
                {"from": "00:00", "to": "08:00", "unit": {"minutes": 480, "price": 500}},
            ],
        },
        "30分钟内免费，1小时内5元，之后08:00-20:00每小时3元；20:00-24:00免费；"
        "00:00-08:00每8小时5元；每天30元封顶",
    ),
]


@pytest.mark.parametrize(("rule", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_text(rule: dict[str, Any], text: str) -> None:
    assert describe(parse_rule(rule)) == text


@pytest.mark.parametrize(
    ("fen", "text"), [(0, "0元"), (5, "0.05元"), (50, "0.5元"), (300, "3元"), (1234, "12.34元")]
)
def test_yuan(fen: int, text: str) -> None:
    assert yuan(fen) == text


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (1, "1分钟"),
        (45, "45分钟"),
        (60, "1小时"),
        (150, "150分钟"),
        (1440, "24小时"),
        (4320, "3天"),
    ],
)
def test_span(minutes: int, text: str) -> None:
    assert span(minutes) == text
