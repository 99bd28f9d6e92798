"""The gate decision engine: what the robot does for a car at a gate.

``decide`` is pure: the same situation always gives the same decision. The
rules are the contract's (contracts.md, "eppark decide"), first match wins.
Expiry is measured from the pass's ``valid_until``: a pass expired by ``d``
counts as "within N days" when ``0 < d ≤ N × 24 h``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from eppark.domain import fields as f
from eppark.domain.errors import BadInput
from eppark.domain.scenarios import SCENARIOS, Scenario

DEFAULT_GRACE_DAYS = 3
DEFAULT_PAYABLE_DAYS = 7


class Direction(StrEnum):
    """Which way the gate lets cars through."""

    ENTRY = "entry"
    EXIT = "exit"


class EnteredAs(StrEnum):
    """How a car inside the lot entered: as a pass holder or as temp parking."""

    PASS = "pass"
    TEMP = "temp"


class PassStatus(StrEnum):
    """A monthly pass's standing at a given moment."""

    NONE = "none"  # no pass, or one that has not started yet
    VALID = "valid"
    EXPIRED_GRACE = "expired_grace"  # 0 < d ≤ grace days
    EXPIRED_PAYABLE = "expired_payable"  # grace < d ≤ payable days
    LAPSED = "lapsed"  # d > payable days


@dataclass(frozen=True, slots=True)
class LotPolicy:
    """The lot settings the decision depends on."""

    temp_entry_confirmation: bool
    expired_grace_days: int = DEFAULT_GRACE_DAYS
    expired_payable_days: int = DEFAULT_PAYABLE_DAYS


@dataclass(frozen=True, slots=True)
class PassView:
    """The car's monthly pass as the gate sees it, with its shared-space group."""

    valid_from: datetime
    valid_until: datetime
    spaces: int = 1
    group_in_lot: int = 0  # the group's *other* cars inside now

    def status(self, now: datetime, lot: LotPolicy) -> PassStatus:
        """Standing of the pass at ``now`` under the lot's expiry thresholds."""
        if now < self.valid_from:
            return PassStatus.NONE
        if now <= self.valid_until:
            return PassStatus.VALID
        expired_for = now - self.valid_until
        if expired_for <= timedelta(days=lot.expired_grace_days):
            return PassStatus.EXPIRED_GRACE
        if expired_for <= timedelta(days=lot.expired_payable_days):
            return PassStatus.EXPIRED_PAYABLE
        return PassStatus.LAPSED


@dataclass(frozen=True, slots=True)
class StayView:
    """The car's open stay in this lot, as the exit gate sees it."""

    entered_as: EnteredAs
    due: int  # fen owed now, after payments and the exit grace
    entered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Situation:
    """Everything the engine needs about one car at one gate, at one moment."""

    now: datetime
    direction: Direction
    plate: str | None
    lot: LotPolicy
    monthly_pass: PassView | None
    stay: StayView | None = None

    @property
    def has_plate(self) -> bool:
        """Whether the camera read a plate at all."""
        return bool(self.plate and self.plate.strip())


def decide(situation: Situation) -> Scenario:
    """The scenario that applies to ``situation``."""
    if situation.direction is Direction.ENTRY:
        return SCENARIOS[_entry(situation)]
    return SCENARIOS[_exit(situation)]


def pass_status(monthly_pass: PassView | None, at: datetime, lot: LotPolicy) -> PassStatus:
    """Standing at ``at`` of the car's pass (none when it has no pass)."""
    if monthly_pass is None:
        return PassStatus.NONE
    return monthly_pass.status(at, lot)


def enters_on_pass(monthly_pass: PassView | None, at: datetime, lot: LotPolicy) -> bool:
    """Whether a car entering at ``at`` enters on its pass: valid then, with a free space.

    The one rule for "pass or temp" at entry: the live decision (entry.monthly_valid)
    and the stay a car starts (``eppark.domain.stays``) both use it.
    """
    return _admits(pass_status(monthly_pass, at, lot), monthly_pass)


def _admits(status: PassStatus, monthly_pass: PassView | None) -> bool:
    return (
        status is PassStatus.VALID
        and monthly_pass is not None
        and monthly_pass.group_in_lot < monthly_pass.spaces
    )


def _status(situation: Situation) -> PassStatus:
    return pass_status(situation.monthly_pass, situation.now, situation.lot)


def _entry(s: Situation) -> str:
    if not s.has_plate:
        return "entry.unplated"
    status = _status(s)
    if _admits(status, s.monthly_pass):
        return "entry.monthly_valid"
    if status is PassStatus.VALID:  # its group's spaces are taken
        return "entry.shared_full" if s.lot.temp_entry_confirmation else "entry.temp_allowed"
    if status in (PassStatus.EXPIRED_GRACE, PassStatus.EXPIRED_PAYABLE):
        return "entry.monthly_expired"
    if s.lot.temp_entry_confirmation:
        return "entry.temp_forbidden"
    return "entry.temp_allowed"


_EXIT_BY_PASS_STATUS = {
    PassStatus.VALID: "exit.monthly_valid",
    PassStatus.EXPIRED_GRACE: "exit.monthly_expired_grace",
    PassStatus.EXPIRED_PAYABLE: "exit.monthly_expired",
    PassStatus.LAPSED: "exit.monthly_lapsed",
}


def _exit(s: Situation) -> str:
    if not s.has_plate:
        return "exit.unplated"
    status = _status(s)
    if status is not PassStatus.NONE and (s.stay is None or s.stay.entered_as is EnteredAs.PASS):
        return _EXIT_BY_PASS_STATUS[status]
    if status is PassStatus.LAPSED:
        return "exit.monthly_lapsed"
    if s.stay is None:
        return "exit.no_entry_record"
    if s.stay.due > 0:
        return "exit.shared_full_unpaid" if status is PassStatus.VALID else "exit.temp_unpaid"
    return "exit.temp_paid"


# --- JSON (the contract's situation/decision shapes) ---------------------------------------


def parse_situation(value: Any) -> Situation:
    """Read a contract *situation*; raise ``BadInput`` naming the first bad field."""
    data = f.obj(value, "")
    now = f.timestamp(f.require(data, "now"), "now")
    direction_raw = f.require(data, "direction")
    if direction_raw not in ("entry", "exit"):
        raise BadInput("direction", 'must be "entry" or "exit"')
    direction = Direction(direction_raw)
    plate_raw = f.require(data, "plate")
    plate = None if plate_raw is None else f.string(plate_raw, "plate")
    lot = _parse_lot(f.require(data, "lot"))
    pass_raw = f.require(data, "pass")
    monthly_pass = None if pass_raw is None else _parse_pass(pass_raw)
    stay = None
    if direction is Direction.EXIT:
        session_raw = f.require(data, "session")
        stay = None if session_raw is None else _parse_stay(session_raw, now)
    return Situation(now, direction, plate, lot, monthly_pass, stay)


def _parse_lot(value: Any) -> LotPolicy:
    lot = f.obj(value, "lot")
    confirmation = f.boolean(
        f.require(lot, "temp_entry_confirmation", "lot"), "lot.temp_entry_confirmation"
    )
    grace = _optional_days(lot, "expired_grace_days", DEFAULT_GRACE_DAYS)
    payable = _optional_days(lot, "expired_payable_days", DEFAULT_PAYABLE_DAYS)
    if grace > payable:
        raise BadInput(
            "lot.expired_grace_days",
            f"{grace} is more than expired_payable_days ({payable})",
        )
    return LotPolicy(confirmation, grace, payable)


def _optional_days(lot: Any, key: str, default: int) -> int:
    if key not in lot or lot[key] is None:
        return default
    return f.integer(lot[key], f"lot.{key}", minimum=0)


def _parse_pass(value: Any) -> PassView:
    data = f.obj(value, "pass")
    valid_from = f.timestamp(f.require(data, "valid_from", "pass"), "pass.valid_from")
    valid_until = f.timestamp(f.require(data, "valid_until", "pass"), "pass.valid_until")
    if valid_until < valid_from:
        raise BadInput("pass.valid_until", "is before pass.valid_from")
    spaces = f.integer(data.get("spaces", 1), "pass.spaces", minimum=1)
    in_lot = f.integer(data.get("group_in_lot", 0), "pass.group_in_lot", minimum=0)
    return PassView(valid_from, valid_until, spaces, in_lot)


def _parse_stay(value: Any, now: datetime) -> StayView:
    data = f.obj(value, "session")
    entered_as = f.require(data, "as", "session")
    if entered_as not in ("pass", "temp"):
        raise BadInput("session.as", 'must be "pass" or "temp"')
    due = f.integer(f.require(data, "due", "session"), "session.due", minimum=0)
    entered_at = None
    if data.get("entered_at") is not None:
        entered_at = f.timestamp(data["entered_at"], "session.entered_at")
        if entered_at > now:
            raise BadInput("session.entered_at", "is after now")
    return StayView(EnteredAs(entered_as), due, entered_at)


def decide_from_json(value: Any) -> dict[str, Any]:
    """The whole ``eppark decide`` body: a situation in, a decision out."""
    return decide(parse_situation(value)).to_json()
