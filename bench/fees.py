"""Fees per second, in process: the engine beside the naive unit-by-unit reference.

Cases (random stays of 0-30 days entered over a year, mixed offsets):
the manual's rule with a 24 h cap; day/night segments with window caps and a
calendar-day cap (Asia/Shanghai, and Europe/Berlin across DST changes);
the manual's rule with payments (two costings per fee); the JSON contract
path (parse + compute). The baseline is ``tariff.reference``: the same
semantics unit by unit, reading the wall clock minute by minute; every
baseline answer is also checked against the engine.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from eppark.domain.tariff import Payment, TariffRule, compute_fee, fee_from_json, parse_rule
from eppark.domain.tariff.reference import reference_fee

MANUAL = {
    "free_minutes": 30,
    "first": {"minutes": 60, "price": 500},
    "unit": {"minutes": 60, "price": 300},
    "cap": {"price": 3000, "per": "24h"},
}
DAY_NIGHT = {
    "free_minutes": 15,
    "first": {"minutes": 30, "price": 200},
    "cap": {"price": 2500, "per": "day"},
    "segments": [
        {"from": "08:00", "to": "20:00", "unit": {"minutes": 30, "price": 150}, "cap": 2000},
        {"from": "20:00", "to": "08:00", "unit": {"minutes": 60, "price": 100}, "cap": 500},
    ],
}
OFFSETS = [timezone(timedelta(hours=h)) for h in (8, 0, 1, -5)]
Stay = tuple[datetime, datetime, list[Payment]]


def stays(count: int, payments: bool = False, seed: int = 11) -> list[Stay]:
    """Random stays of 0-30 days entered during 2026, some with payments."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[Stay] = []
    for _ in range(count):
        entered = start + timedelta(seconds=rng.randint(0, 365 * 86400))
        at = entered + timedelta(seconds=rng.randint(0, 30 * 86400))
        paid = []
        if payments:
            for _ in range(rng.randint(1, 3)):
                when = entered + (at - entered) * rng.random()
                paid.append(Payment(when.astimezone(rng.choice(OFFSETS)), rng.randint(0, 5000)))
            if rng.random() < 0.5:  # a car that paid and leaves inside the grace
                when = max(entered, at - timedelta(minutes=rng.randint(0, 14)))
                paid[-1] = Payment(when, 10**6)
        entered_at, left_at = (moment.astimezone(rng.choice(OFFSETS)) for moment in (entered, at))
        out.append((entered_at, left_at, paid))
    return out


def _rate(fn: Callable[[Any], Any], items: list[Any], repeat: int = 3) -> float:
    """Calls per second, best of ``repeat``."""
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - began)
    return len(items) / best


def _case(name: str, rule: TariffRule, items: list[Stay], naive: int) -> dict[str, Any]:
    """The engine's and the reference's rates on the same stays (and their agreement)."""

    def fast(stay: Stay) -> tuple[int, int, int, bool]:
        result = compute_fee(rule, *stay)
        return result.total, result.paid, result.due, result.within_grace

    def slow(stay: Stay) -> tuple[int, int, int, bool]:
        return reference_fee(rule, stay[0], stay[1], [(p.paid_at, p.amount) for p in stay[2]])

    fast(items[0])  # warm the per-day memo for the zone
    sample = items[:naive]
    began = time.perf_counter()
    expected = [slow(stay) for stay in sample]
    baseline = len(sample) / (time.perf_counter() - began)
    agree = all(fast(stay) == want for stay, want in zip(sample, expected, strict=True))
    return {
        "case": name,
        "value": _rate(fast, items),
        "baseline": "naive unit-by-unit reference",
        "baseline_value": baseline,
        "agree": agree,
    }


def run(count: int = 20_000, naive: int = 12) -> list[dict[str, Any]]:
    """Fees per second by rule shape."""
    manual, day_night = parse_rule(MANUAL), parse_rule(DAY_NIGHT)
    berlin = parse_rule({**DAY_NIGHT, "timezone": "Europe/Berlin"})
    plain, paying = stays(count), stays(count, payments=True)
    rows = [
        _case("manual rule, 24h cap, 0-30 days", manual, plain, naive * 10),
        _case("day/night segments + day cap, 0-30 days", day_night, plain, naive),
        _case("same, Europe/Berlin (DST)", berlin, plain, naive),
        _case("manual rule with payments, 0-30 days", manual, paying, naive * 10),
    ]
    bodies = [
        {"rule": DAY_NIGHT, "entered_at": e.isoformat(), "at": a.isoformat()}
        for e, a, _ in plain[: count // 4]
    ]
    rows.append(
        {
            "case": "JSON contract path (parse + segments fee)",
            "value": _rate(fee_from_json, bodies),
        }
    )
    for row in rows:
        row.update(bench="fee", unit="fees/s")
    return rows


if __name__ == "__main__":
    print(f"{'case':<45} {'fees/s':>10} {'baseline/s':>11}  agree")
    for row in run():
        base = row.get("baseline_value")
        print(
            f"{row['case']:<45} {row['value']:>10,.0f} "
            f"{'' if base is None else f'{base:>11,.1f}'}  {row.get('agree', '')}"
        )
