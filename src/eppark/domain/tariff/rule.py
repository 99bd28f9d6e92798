"""The tariff RULE of ``eppark fee``: read from JSON into frozen dataclasses, or refused."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo

from eppark.domain.errors import BadInput
from eppark.domain.fields import boolean, join, obj, string
from eppark.domain.tariff.plan import Plan

DAY_MINUTES = 1440
_CLOCK = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d|24:00")
_RULE_KEYS = (
    "free_minutes",
    "free_minutes_deducted",
    "first",
    "unit",
    "cap",
    "segments",
    "timezone",
    "exit_grace_minutes",
)


@dataclass(frozen=True)
class Period:
    """A charged period: ``minutes`` long, costing ``price`` fen once started."""

    minutes: int
    price: int


@dataclass(frozen=True)
class Cap:
    """At most ``price`` fen per 24 h from entry (``"24h"``) or per local calendar day."""

    price: int
    per: Literal["24h", "day"]


@dataclass(frozen=True)
class Segment:
    """A window of the local day, ``start``..``end`` in minutes after midnight (may wrap)."""

    start: int
    end: int
    unit: Period
    cap: int | None
    start_text: str
    end_text: str


@dataclass(frozen=True)
class TariffRule:
    """A lot's temp-parking tariff; ``segments`` keep their input order."""

    free_minutes: int = 0
    free_minutes_deducted: bool = False
    first: Period | None = None
    unit: Period | None = None
    cap: Cap | None = None
    segments: tuple[Segment, ...] = ()
    timezone: str = "Asia/Shanghai"
    exit_grace_minutes: int = 15

    @cached_property
    def plan(self) -> Plan:
        """The rule in the engine's terms (microseconds, sorted windows), built once."""
        return Plan.of(self)


def parse_rule(value: Any, path: str = "rule") -> TariffRule:
    """A validated RULE; BadInput names the first bad field."""
    data = obj(value, path)
    _known(data, _RULE_KEYS, path)
    free = _minutes(data.get("free_minutes", 0), join(path, "free_minutes"), minimum=0)
    deducted = boolean(
        data.get("free_minutes_deducted", False), join(path, "free_minutes_deducted")
    )
    first = _optional_period(data.get("first"), join(path, "first"))
    unit = _optional_period(data.get("unit"), join(path, "unit"))
    cap = _cap(data.get("cap"), join(path, "cap"))
    zone = _timezone(data.get("timezone", "Asia/Shanghai"), join(path, "timezone"))
    grace = _minutes(data.get("exit_grace_minutes", 15), join(path, "exit_grace_minutes"), 0)
    segments = _segments(data.get("segments"), join(path, "segments"), unit)
    if unit is None and not segments:
        raise BadInput(join(path, "unit"), "is required unless segments are given")
    return TariffRule(free, deducted, first, unit, cap, segments, zone, grace)


def _known(data: Mapping[str, Any], keys: tuple[str, ...], path: str) -> None:
    """Refuse keys the contract does not define."""
    for key in data:
        if key not in keys:
            raise BadInput(join(path, str(key)), f"is not a known field (known: {', '.join(keys)})")


def _minutes(value: Any, path: str, minimum: int = 1) -> int:
    """A whole number of minutes, at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(path, f"must be a whole number of minutes, not {value!r}")
    if value < minimum:
        wanted = "a positive number of minutes" if minimum > 0 else "at least 0 minutes"
        raise BadInput(path, f"must be {wanted}, not {value}")
    return value


def money(value: Any, path: str) -> int:
    """Money: a JSON integer of fen, at least 0 (floats such as 5.0 and booleans are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(path, f"must be a whole number of fen (1元 = 100), not {value!r}")
    if value < 0:
        raise BadInput(path, f"must not be negative, not {value}")
    return value


def _optional_period(value: Any, path: str) -> Period | None:
    """A ``{"minutes", "price"}`` object, or None when absent or null."""
    return None if value is None else _period(value, path)


def _period(value: Any, path: str) -> Period:
    """A ``{"minutes", "price"}`` object."""
    data = obj(value, path)
    _known(data, ("minutes", "price"), path)
    for key in ("minutes", "price"):
        if key not in data:
            raise BadInput(join(path, key), "is required")
    return Period(
        _minutes(data["minutes"], join(path, "minutes")), money(data["price"], join(path, "price"))
    )


def _cap(value: Any, path: str) -> Cap | None:
    """A ``{"price", "per"}`` object, or None when absent or null."""
    if value is None:
        return None
    data = obj(value, path)
    _known(data, ("price", "per"), path)
    for key in ("price", "per"):
        if key not in data:
            raise BadInput(join(path, key), "is required: a cap needs both price and per")
    price = money(data["price"], join(path, "price"))
    per = data["per"]
    if per == "24h" and isinstance(per, str):
        return Cap(price, "24h")
    if per == "day" and isinstance(per, str):
        return Cap(price, "day")
    raise BadInput(join(path, "per"), f'is an unknown cap window {per!r}: use "24h" or "day"')


def _timezone(value: Any, path: str) -> str:
    """An IANA time-zone name that this system knows."""
    name = string(value, path)
    try:
        ZoneInfo(name)
    except (ValueError, OSError, KeyError):
        raise BadInput(path, f"unknown time zone {name!r} (e.g. Asia/Shanghai)") from None
    return name


def _clock(value: Any, path: str, *, end: bool) -> int:
    """A time of day "HH:MM" in minutes after midnight ("24:00" only as an end)."""
    text = string(value, path)
    if not _CLOCK.fullmatch(text) or (text == "24:00" and not end):
        raise BadInput(path, f"{text!r} is not a time of day as HH:MM (00:00-23:59)")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _segments(value: Any, path: str, default_unit: Period | None) -> tuple[Segment, ...]:
    """The day's windows, which must tile the local day exactly."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadInput(path, "must be a list of windows")
    if not value:
        raise BadInput(path, "must list at least one window (or leave segments out)")
    segments = tuple(_segment(item, join(path, k), default_unit) for k, item in enumerate(value))
    _check_tiling(segments, path)
    return segments


def _segment(value: Any, path: str, default_unit: Period | None) -> Segment:
    """One window: from, to, unit (default: the rule's unit) and an optional cap."""
    data = obj(value, path)
    _known(data, ("from", "to", "unit", "cap"), path)
    for key in ("from", "to"):
        if key not in data:
            raise BadInput(join(path, key), "is required")
    start = _clock(data["from"], join(path, "from"), end=False)
    end = _clock(data["to"], join(path, "to"), end=True)
    unit = _optional_period(data.get("unit"), join(path, "unit")) or default_unit
    if unit is None:
        raise BadInput(join(path, "unit"), "is required when the rule has no unit")
    cap = data.get("cap")
    if cap is not None:
        cap = money(cap, join(path, "cap"))
    return Segment(start, end, unit, cap, data["from"], data["to"])


def _check_tiling(segments: tuple[Segment, ...], path: str) -> None:
    """Windows must cover the local day once: no gaps, no overlaps."""
    order = sorted(range(len(segments)), key=lambda k: segments[k].start)
    for before, after in pairwise(order):
        if segments[before].start == segments[after].start:
            raise BadInput(
                join(join(path, after), "from"),
                f"overlaps {path}[{before}], which also starts at {segments[after].start_text}",
            )
    for rank, k in enumerate(order):
        seg = segments[k]
        nxt = order[(rank + 1) % len(order)]
        wanted = segments[nxt].start
        if seg.end % DAY_MINUTES == wanted:
            continue
        length = (seg.end - seg.start) % DAY_MINUTES or DAY_MINUTES
        room = (wanted - seg.start) % DAY_MINUTES or DAY_MINUTES
        if length > room:
            raise BadInput(
                join(join(path, k), "to"),
                f"{seg.start_text}-{seg.end_text} overlaps {path}[{nxt}], which starts at "
                f"{segments[nxt].start_text}",
            )
        raise BadInput(
            join(join(path, k), "to"),
            f"leaves a gap {seg.end_text}-{segments[nxt].start_text} that no window covers",
        )
