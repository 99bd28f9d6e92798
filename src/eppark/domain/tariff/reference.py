"""The contract computed the slow, obvious way: the tests' oracle and the bench's baseline.

Unit by unit in time order; the local wall clock is read minute by minute
(made monotone by a running maximum) to find window edges and calendar days.
It shares nothing with the engine but the parsed rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from eppark.domain.tariff.rule import Segment, TariffRule

_MIN = 60_000_000
_DAY = 1440 * _MIN
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HUGE = 1 << 80
_LOOK_BACK = 6 * 60


def _us(moment: datetime) -> int:
    """µs since the epoch."""
    return int((moment - _EPOCH) / timedelta(microseconds=1))


def _stretch(wall: datetime, windows: list[Segment]) -> tuple[date, int]:
    """(local date, window) of the latest window start at or before this wall-clock reading."""
    minute = wall.hour * 60 + wall.minute
    latest = -1
    for k, window in enumerate(windows):
        if window.start <= minute:
            latest = k
    if latest < 0:
        return wall.date() - timedelta(days=1), len(windows) - 1
    return wall.date(), latest


def reference_cost(rule: TariffRule, entered_at: datetime, at: datetime) -> int:
    """The total of a stay, unit by unit."""
    zone = ZoneInfo(rule.timezone)
    entered, end = _us(entered_at), _us(at)
    if end - entered <= rule.free_minutes * _MIN:
        return 0
    start = entered + rule.free_minutes * _MIN if rule.free_minutes_deducted else entered
    windows = sorted(rule.segments, key=lambda s: s.start)
    per_day = rule.cap is not None and rule.cap.per == "day"
    base = start // _MIN * _MIN - _LOOK_BACK * _MIN
    walls: list[datetime] = []
    if windows or per_day:
        top = None
        for k in range((end - base) // _MIN + 2):
            wall = (_EPOCH + timedelta(microseconds=base + k * _MIN)).astimezone(zone)
            naive = wall.replace(tzinfo=None)
            top = naive if top is None or naive > top else top
            walls.append(top)
    stretches = [_stretch(w, windows) for w in walls] if windows else []
    cap = rule.cap.price if rule.cap else _HUGE
    spent_stretch: dict[object, int] = defaultdict(int)
    spent_window: dict[object, int] = defaultdict(int)
    total, moment, first = 0, start, rule.first
    while moment < end:
        k = (moment - base) // _MIN
        key = stretches[k] if windows else None
        window = windows[key[1]] if key is not None else None
        period = first or (window.unit if window else rule.unit)
        assert period is not None
        stop = moment + period.minutes * _MIN
        if windows:
            m = k + 1
            while base + m * _MIN < min(stop, end):
                if stretches[m] != key:
                    stop = base + m * _MIN
                    break
                m += 1
        cap_key: object = walls[k].date() if per_day else (moment - entered) // _DAY
        stretch_cap = window.cap if window and window.cap is not None else _HUGE
        charge = min(period.price, stretch_cap - spent_stretch[key], cap - spent_window[cap_key])
        total += charge
        spent_stretch[key] += charge
        spent_window[cap_key] += charge
        moment, first = stop, None
    return total


def reference_fee(
    rule: TariffRule,
    entered_at: datetime,
    at: datetime,
    payments: Sequence[tuple[datetime, int]] = (),
) -> tuple[int, int, int, bool]:
    """(total, paid, due, within_grace) the obvious way."""
    total = reference_cost(rule, entered_at, at)
    paid = sum(amount for _, amount in payments)
    if payments:
        last = max(when for when, _ in payments)
        grace = timedelta(minutes=rule.exit_grace_minutes)
        if at <= last + grace and paid >= reference_cost(rule, entered_at, last):
            return total, paid, 0, True
    return total, paid, max(0, total - paid), False
