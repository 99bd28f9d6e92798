"""Local wall-clock edges as absolute instants (µs since the epoch), memoized per local day.

Local times are read on a wall clock that never runs backwards: an edge such
as "20:00" falls at the first instant the clock reads 20:00 or later. In a
repeated (fall-back) hour that is its first occurrence; inside a skipped
(spring-forward) hour it is the jump itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

MICROSECOND = timedelta(microseconds=1)
MINUTE = 60_000_000
DAY = 86_400_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SCAN_DAYS = 800
_RUNS: dict[tuple[ZoneInfo, tuple[int, ...]], dict[int, int]] = {}


def to_us(moment: datetime) -> int:
    """An aware datetime as whole microseconds since the epoch."""
    return (moment - EPOCH) // MICROSECOND


def _wall(zone: ZoneInfo, us: int) -> datetime:
    """The naive local wall-clock reading at instant ``us``."""
    return (EPOCH + timedelta(microseconds=us)).astimezone(zone).replace(tzinfo=None)


@lru_cache(maxsize=1 << 16)
def first_hit(zone: ZoneInfo, ordinal: int, minute: int) -> int:
    """The first instant at which the wall clock reads ``minute`` of day ``ordinal`` or later."""
    naive = datetime.fromordinal(ordinal) + timedelta(minutes=minute)
    guesses = [to_us(naive.replace(tzinfo=zone, fold=fold)) for fold in (0, 1)]
    found = [us for us in guesses if _wall(zone, us) == naive]
    if found:
        return min(found)
    low, high = min(guesses), max(guesses)
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(zone, middle) >= naive:
            high = middle
        else:
            low = middle
    return high


@lru_cache(maxsize=1 << 16)
def day_edges(zone: ZoneInfo, minutes: tuple[int, ...], ordinal: int) -> tuple[int, ...]:
    """The instants of the given wall-clock minutes on local day ``ordinal``."""
    return tuple(first_hit(zone, ordinal, minute) for minute in minutes)


def midnight(zone: ZoneInfo, ordinal: int) -> int:
    """The instant local day ``ordinal`` begins."""
    return first_hit(zone, ordinal, 0)


def local_day(zone: ZoneInfo, us: int) -> int:
    """The ordinal of the local day that instant ``us`` falls in."""
    day = (EPOCH + timedelta(microseconds=us)).astimezone(zone).toordinal()
    while first_hit(zone, day, 0) > us:
        day -= 1
    while first_hit(zone, day + 1, 0) <= us:
        day += 1
    return day


def regular_until(zone: ZoneInfo, minutes: tuple[int, ...], ordinal: int) -> int:
    """A day r ≥ ``ordinal``: days ordinal..r repeat day ``ordinal``'s edges, shifted whole days."""
    runs = _RUNS.setdefault((zone, minutes), {})
    known = runs.get(ordinal)
    if known is not None:
        return known
    if len(runs) > 1 << 17:
        runs.clear()
    end, edges = ordinal, day_edges(zone, minutes, ordinal)
    while end < ordinal + _SCAN_DAYS:
        following = day_edges(zone, minutes, end + 1)
        if any(b - a != DAY for a, b in zip(edges, following, strict=True)):
            break
        end, edges = end + 1, following
    for day in range(ordinal, max(end, ordinal + 1)):
        runs[day] = end
    return end
