"""``eppark demo``: every gate scenario of the manual, decided by the real engine.

Until the server exists this is the demo: for each scenario of scenarios.md §1
it builds a situation a lot would really see, runs ``decide`` on it and prints
what the robot does.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from eppark.domain.decide import decide_from_json
from eppark.domain.tariff import compute_fee, parse_rule

NOW = datetime.fromisoformat("2026-11-27T08:00:00+08:00")
MANUAL_TARIFF = {
    "free_minutes": 30,
    "first": {"minutes": 60, "price": 500},
    "unit": {"minutes": 60, "price": 300},
    "cap": {"price": 3000, "per": "24h"},
}


@dataclass(frozen=True)
class Example:
    """A described situation at a gate, as the contract's JSON."""

    expected: str
    story: str
    situation: dict[str, Any]


def _pass(until: timedelta, *, spaces: int = 1, in_lot: int = 0) -> dict[str, Any]:
    """A pass that started in January and ends ``until`` from now (negative: expired)."""
    return {
        "valid_from": "2026-01-01T00:00:00+08:00",
        "valid_until": (NOW + until).isoformat(),
        "spaces": spaces,
        "group_in_lot": in_lot,
    }


def _situation(direction: str, plate: str | None, *, confirm: bool, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "now": NOW.isoformat(),
        "direction": direction,
        "plate": plate,
        "lot": {"temp_entry_confirmation": confirm},
        "pass": extra.pop("monthly_pass", None),
    }
    if direction == "exit":
        body["session"] = extra.pop("session", None)
    body.update(extra)
    return body


def examples() -> Iterator[Example]:
    """One realistic situation per scenario id, in the manual's order."""
    day = timedelta(days=1)
    hour = timedelta(hours=1)
    entered = NOW - 3 * hour
    owed = compute_fee(parse_rule(MANUAL_TARIFF), entered, NOW).due  # 3 h under the manual's rule
    temp_session = {"entered_at": entered.isoformat(), "as": "temp"}
    yield Example(
        "entry.monthly_valid",
        "月卡有效，进场",
        _situation("entry", "粤B12345", confirm=True, monthly_pass=_pass(30 * day)),
    )
    yield Example("entry.unplated", "车牌无法识别", _situation("entry", None, confirm=True))
    yield Example(
        "entry.monthly_expired",
        "月卡过期5天，进场",
        _situation("entry", "粤B12345", confirm=True, monthly_pass=_pass(-5 * day)),
    )
    yield Example(
        "entry.temp_allowed", "陌生车，车场允许临停", _situation("entry", "粤B88888", confirm=False)
    )
    yield Example(
        "entry.temp_forbidden",
        "陌生车，车场开启临停确认进场",
        _situation("entry", "粤B88888", confirm=True),
    )
    yield Example(
        "entry.shared_full",
        "2车位已有2车在场，临停确认进场",
        _situation(
            "entry", "粤BD12345", confirm=True, monthly_pass=_pass(30 * day, spaces=2, in_lot=2)
        ),
    )
    yield Example(
        "exit.monthly_valid",
        "月卡有效，出场",
        _situation(
            "exit",
            "粤B12345",
            confirm=True,
            monthly_pass=_pass(30 * day),
            session={"as": "pass", "due": 0},
        ),
    )
    yield Example(
        "exit.monthly_expired_grace",
        "月卡过期2天，出场",
        _situation(
            "exit",
            "粤B12345",
            confirm=True,
            monthly_pass=_pass(-2 * day),
            session={"as": "pass", "due": 0},
        ),
    )
    yield Example(
        "exit.monthly_expired",
        "月卡过期5天，出场",
        _situation(
            "exit",
            "粤B12345",
            confirm=True,
            monthly_pass=_pass(-5 * day),
            session={"as": "pass", "due": 0},
        ),
    )
    yield Example(
        "exit.monthly_lapsed",
        "月卡过期10天，出场",
        _situation(
            "exit",
            "粤B12345",
            confirm=True,
            monthly_pass=_pass(-10 * day),
            session={"as": "pass", "due": 0},
        ),
    )
    yield Example("exit.unplated", "车牌无法识别，出场", _situation("exit", "", confirm=True))
    yield Example(
        "exit.temp_unpaid",
        "临停3小时未缴费",
        _situation("exit", "粤B88888", confirm=False, session={**temp_session, "due": owed}),
    )
    yield Example(
        "exit.shared_full_unpaid",
        "共享车位满时临停进场，未缴费",
        _situation(
            "exit",
            "粤BD12345",
            confirm=False,
            monthly_pass=_pass(30 * day, spaces=2, in_lot=2),
            session={**temp_session, "due": owed},
        ),
    )
    yield Example(
        "exit.temp_paid",
        "临停已缴费，离场宽限期内",
        _situation("exit", "粤B88888", confirm=False, session={**temp_session, "due": 0}),
    )
    yield Example(
        "exit.no_entry_record", "临停车无进场记录", _situation("exit", "粤B66666", confirm=False)
    )


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _display(display: dict[str, Any]) -> str:
    kind = display["kind"]
    if kind == "face":
        return f"face:{display['face']}"
    if kind == "qr":
        return f"QR:{display['qr']}"
    if kind == "text":
        return f"text:{display['text']}"
    return "车辆列表"


def print_scenarios(out: IO[str]) -> None:
    """Print each example situation and the engine's decision as a table."""
    headers = ("scenario", "situation", "plate", "open", "light", "display", "voice")
    rows = []
    for example in examples():
        decision = decide_from_json(example.situation)
        plate = example.situation["plate"] or "（无牌）"
        rows.append(
            (
                decision["scenario"],
                example.story,
                plate,
                "开闸" if decision["open"] else "—",
                decision["light"],
                _display(decision["display"]),
                decision["voice"],
            )
        )
    widths = [max(_width(str(row[i])) for row in (headers, *rows)) for i in range(len(headers))]
    out.write(f"EP Park gate scenarios, decided by the engine at {NOW.isoformat()}\n\n")
    for row in (headers, *rows):
        cells = [_pad(str(cell), widths[i]) for i, cell in enumerate(row[:-1])]
        out.write("  ".join([*cells, str(row[-1])]).rstrip() + "\n")
