"""A rule restated in the engine's terms: microseconds, windows sorted by start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from eppark.domain.tariff.clock import DAY, MINUTE
from eppark.domain.tariff.describe import describe

if TYPE_CHECKING:
    from eppark.domain.tariff.rule import TariffRule

NO_CAP = 1 << 80
"""Stands for "no cap": larger than any fee a stay can reach."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What the engine reads: lengths in µs, prices in fen, ``NO_CAP`` where no cap applies."""

    zone: ZoneInfo
    free: int
    deducted: bool
    first_len: int
    first_price: int
    flat: bool
    starts: tuple[int, ...]
    units: tuple[int, ...]
    prices: tuple[int, ...]
    caps: tuple[int, ...]
    cap: int
    per_day: bool
    saturated: bool
    check_minutes: tuple[int, ...]
    grace: int
    text: str
    periods: dict[tuple[int, ...], tuple[int, int]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """Learnt repetitions: from a boundary state, (length, cost) until the same state recurs."""

    @classmethod
    def of(cls, rule: TariffRule) -> Plan:
        """The plan of a validated rule."""
        cap = rule.cap.price if rule.cap else NO_CAP
        per_day = rule.cap is not None and rule.cap.per == "day"
        if rule.segments:
            windows = sorted(rule.segments, key=lambda s: s.start)
            starts = tuple(s.start for s in windows)
            units = tuple(s.unit.minutes * MINUTE for s in windows)
            prices = tuple(s.unit.price for s in windows)
            caps = tuple(NO_CAP if s.cap is None else s.cap for s in windows)
        else:
            assert rule.unit is not None
            starts, caps = (), (NO_CAP,)
            units, prices = (rule.unit.minutes * MINUTE,), (rule.unit.price,)
        minutes = set(starts) | ({0} if per_day else set())
        return cls(
            zone=ZoneInfo(rule.timezone),
            free=rule.free_minutes * MINUTE,
            deducted=rule.free_minutes_deducted,
            first_len=rule.first.minutes * MINUTE if rule.first else 0,
            first_price=rule.first.price if rule.first else 0,
            flat=not rule.segments,
            starts=starts,
            units=units,
            prices=prices,
            caps=caps,
            cap=cap,
            per_day=per_day,
            saturated=not rule.segments and (DAY // units[0]) * prices[0] >= cap,
            check_minutes=tuple(sorted(minutes)),
            grace=rule.exit_grace_minutes * MINUTE,
            text=describe(rule),
        )
