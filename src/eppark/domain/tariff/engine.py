"""The fee of a temp stay: unit by unit in effect, periods at a time in fact.

The engine walks the stay in *pieces*: stretches of one window of the local
day, cut at every 24 h / calendar-day cap boundary. Inside a piece every unit
has the same price and the same two budgets (the window stretch's cap and the
24 h / day cap), so applying the caps unit by unit in time order costs
``min(n·price, stretch budget, cap-window budget)`` for its n units. At every
cap-window boundary the engine notes its state relative to that instant; when
a state repeats, the days in between repeat too (as long as the local day's
edges are whole days apart, which ``clock.regular_until`` checks), so it
jumps over whole repetitions and pays for them in one multiplication. A
repetition once seen is remembered on the rule's plan (``Plan.periods``), so
later stays under the same rule jump at their first boundary. The naive
reference (``tariff.reference``) is the oracle this must always agree with.
"""

from __future__ import annotations

from eppark.domain.tariff.clock import DAY, day_edges, first_hit, local_day, regular_until
from eppark.domain.tariff.plan import NO_CAP, Plan

_FAR = 1 << 120
"""An instant later than any stay ends: the end of the single window of a flat rule."""

Signature = tuple[int, ...]
"""The walk's state at a cap-window boundary, relative to that boundary."""


def stay_cost(plan: Plan, entered: int, end: int) -> int:
    """The total of a stay from ``entered`` to ``end`` (µs since the epoch)."""
    if end - entered <= plan.free:
        return 0
    start = entered + plan.free if plan.deducted else entered
    if plan.flat and plan.cap >= NO_CAP:
        lattice = start + plan.first_len
        units = -((lattice - end) // plan.units[0]) if end > lattice else 0
        return plan.first_price + units * plan.prices[0]
    return _walk(plan, entered, start, end)


def _stretch_at(plan: Plan, moment: int, day: int) -> tuple[int, int]:
    """The (local day, window index) of the window stretch that ``moment`` (on ``day``) is in."""
    edges = day_edges(plan.zone, plan.starts, day)
    index = len(edges) - 1
    while index >= 0 and edges[index] > moment:
        index -= 1
    if index < 0:
        return day - 1, len(edges) - 1
    return day, index


def _room(plan: Plan, day: int, step: int) -> int:
    """How many repetitions of ``step`` may follow local ``day`` with the days still regular."""
    if plan.flat and not plan.per_day:
        return _FAR
    if step % DAY:
        return 0
    last = regular_until(plan.zone, plan.check_minutes, day - step // DAY - 3)
    return max(0, (last - 3 - day) * DAY // step)


def _learn(plan: Plan, sig: Signature, step: int, gain: int) -> None:
    """Remember that ``sig`` recurs after ``step`` µs at a cost of ``gain`` (on regular days)."""
    if len(plan.periods) > 4096:
        plan.periods.clear()
    plan.periods[sig] = (step, gain)


def _walk(plan: Plan, entered: int, start: int, end: int) -> int:
    """Apply the caps unit by unit in time order, one piece at a time."""
    zone, cap, flat, per_day = plan.zone, plan.cap, plan.flat, plan.per_day
    starts, units, prices, caps = plan.starts, plan.units, plan.prices, plan.caps
    windows = len(starts)
    today = local_day(zone, start) if per_day or not flat else 0
    if per_day:
        cap_day = today
        cap_start, cap_end = first_hit(zone, cap_day, 0), first_hit(zone, cap_day + 1, 0)
    else:
        cap_day = 0
        cap_start = entered + (start - entered) // DAY * DAY
        cap_end = cap_start + DAY
    if flat:
        day, index, s_start, s_end = 0, 0, start, _FAR
    else:
        day, index = _stretch_at(plan, start, today)
        edges = day_edges(zone, starts, day)
        s_start = edges[index]
        s_end = edges[index + 1] if index + 1 < windows else day_edges(zone, starts, day + 1)[0]
    unit, price, s_cap = units[index], prices[index], caps[index]
    total = spent = spent_cap = 0
    moment = start
    if plan.first_len:
        charge = plan.first_price
        charge = s_cap if s_cap < charge else charge
        total = spent = spent_cap = cap if cap < charge else charge
        moment = start + plan.first_len
        moment = s_end if s_end < moment else moment
    lattice = moment
    seen: dict[Signature, tuple[int, int]] = {}
    while moment < end:
        if moment >= s_end:
            while moment >= s_end:
                index += 1
                if index == windows:
                    day, index = day + 1, 0
                s_start = s_end
                if index + 1 < windows:
                    s_end = day_edges(zone, starts, day)[index + 1]
                else:
                    s_end = day_edges(zone, starts, day + 1)[0]
            unit, price, s_cap = units[index], prices[index], caps[index]
            lattice, spent = s_start, 0
        if moment >= cap_end:
            while moment >= cap_end:
                cap_day += 1
                cap_start = cap_end
                cap_end = first_hit(zone, cap_day + 1, 0) if per_day else cap_end + DAY
            spent_cap = 0
            if moment == cap_start:
                if flat:
                    phase = -1 if plan.saturated else (moment - lattice) % unit
                    sig: Signature | None = (phase,) if moment >= lattice else None
                else:
                    kept = spent if s_cap < NO_CAP else 0
                    sig = (index, moment - s_start, s_end - moment, lattice - s_start, kept)
                if sig is not None:
                    before = seen.get(sig)
                    if before is not None:
                        step, gain = moment - before[0], total - before[1]
                    else:
                        step, gain = plan.periods.get(sig, (0, 0))
                    if step:
                        times = (end - moment) // step
                        if times:
                            times = min(times, _room(plan, cap_day if per_day else day + 1, step))
                        if times > 0:
                            if before is not None:
                                _learn(plan, sig, step, gain)
                            shift = times * step
                            total += times * gain
                            moment += shift
                            cap_start += shift
                            cap_end += shift
                            cap_day += shift // DAY if per_day else 0
                            if not flat:
                                s_start, s_end = s_start + shift, s_end + shift
                                lattice += shift
                                day += shift // DAY
                        seen.clear()
                    seen[sig] = (moment, total)
        piece_end = s_end if s_end < cap_end else cap_end
        piece_end = end if end < piece_end else piece_end
        count = (lattice - moment) // unit - (lattice - piece_end) // unit
        if count > 0:
            charge = count * price
            left = s_cap - spent
            charge = left if left < charge else charge
            left = cap - spent_cap
            charge = left if left < charge else charge
            total += charge
            spent += charge
            spent_cap += charge
        moment = piece_end
    return total
