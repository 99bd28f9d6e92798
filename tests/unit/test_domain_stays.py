"""Stay transitions (eppark.domain.stays) and pass standings as ranges (eppark.domain.standing).

The live gate loop and the offline backlog record stays through these
functions; the properties below check that the stay a read starts agrees
with the live decision for the same car at the same moment, whatever the
pass's state, and that an exit records as owed exactly what the live
decision counts as due.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eppark.domain.decide import (
    Direction,
    EnteredAs,
    LotPolicy,
    PassStatus,
    PassView,
    Situation,
    StayView,
    decide,
)
from eppark.domain.standing import expiry_window
from eppark.domain.stays import OpenStay, charge, close, entered_as, starts_stay
from eppark.domain.tariff import Payment, compute_fee, parse_rule

TARIFF: dict[str, Any] = {
    "free_minutes": 30,
    "first": {"minutes": 60, "price": 500},
    "unit": {"minutes": 60, "price": 300},
    "cap": {"price": 3000, "per": "24h"},
}
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
LOT = LotPolicy(temp_entry_confirmation=False)
DAY = timedelta(days=1)


def a_pass(expired: timedelta = -30 * DAY, spaces: int = 1, group: int = 0) -> PassView:
    """A pass that started long ago and ended ``expired`` before NOW (negative: still valid)."""
    return PassView(NOW - 90 * DAY, NOW - expired, spaces, group)


# --- starting a stay ------------------------------------------------------------------------


def test_a_valid_pass_with_a_free_space_enters_as_a_pass_stay() -> None:
    assert entered_as("粤B12345", a_pass(), LOT, NOW) is EnteredAs.PASS


@pytest.mark.parametrize(
    ("case", "monthly"),
    [
        ("no pass", None),
        ("group full", a_pass(spaces=1, group=1)),
        ("expired within grace", a_pass(expired=DAY)),
        ("expired, still renewable", a_pass(expired=5 * DAY)),
        ("lapsed", a_pass(expired=10 * DAY)),
        ("not started", PassView(NOW + DAY, NOW + 30 * DAY)),
    ],
)
def test_any_other_plated_car_enters_as_temp(case: str, monthly: PassView | None) -> None:
    assert entered_as("粤B12345", monthly, LOT, NOW) is EnteredAs.TEMP


@pytest.mark.parametrize("plate", [None, "", "  "])
def test_an_unplated_read_starts_no_stay(plate: str | None) -> None:
    assert entered_as(plate, a_pass(), LOT, NOW) is None


def test_the_pass_is_judged_at_the_reads_own_time() -> None:
    ended_an_hour_ago = a_pass(expired=timedelta(hours=1))
    assert entered_as("粤B12345", ended_an_hour_ago, LOT, NOW) is EnteredAs.TEMP
    earlier = NOW - timedelta(hours=3)
    assert entered_as("粤B12345", ended_an_hour_ago, LOT, earlier) is EnteredAs.PASS


def test_the_lots_own_thresholds_do_not_make_an_expired_pass_a_pass_stay() -> None:
    generous = LotPolicy(False, expired_grace_days=30, expired_payable_days=60)
    assert entered_as("粤B12345", a_pass(expired=DAY), generous, NOW) is EnteredAs.TEMP


def test_a_newer_entry_supersedes_an_older_open_stay_but_an_old_one_starts_nothing() -> None:
    inside = OpenStay(EnteredAs.TEMP, NOW)
    assert starts_stay(None, NOW)
    assert starts_stay(inside, NOW + timedelta(minutes=1))
    assert starts_stay(inside, NOW)
    assert not starts_stay(inside, NOW - timedelta(minutes=1))


# --- what a stay owes and how it closes -------------------------------------------------------


def test_a_pass_stay_costs_nothing() -> None:
    stay = OpenStay(EnteredAs.PASS, NOW - 30 * DAY)
    end = close(stay, TARIFF, [], NOW)
    assert end is not None
    assert (end.total, end.paid, end.owed) == (0, 0, 0)


def test_a_temp_stay_closes_owing_the_tariffs_fee() -> None:
    entered = NOW - timedelta(hours=3)
    end = close(OpenStay(EnteredAs.TEMP, entered), TARIFF, [], NOW)
    assert end is not None
    assert end.exited_at == NOW
    assert end.owed == end.total == 1100 == compute_fee(parse_rule(TARIFF), entered, NOW).due


def test_a_payment_during_the_stay_counts_and_one_outside_it_does_not() -> None:
    entered = NOW - timedelta(hours=3)
    during = Payment(entered + timedelta(hours=1), 500)
    before = Payment(entered - timedelta(hours=1), 900)
    end = close(OpenStay(EnteredAs.TEMP, entered), TARIFF, [during, before], NOW)
    assert end is not None
    assert (end.total, end.paid, end.owed) == (1100, 500, 600)


def test_inside_the_exit_grace_what_was_paid_is_the_fee() -> None:
    entered = NOW - timedelta(hours=3)
    paid = Payment(NOW - timedelta(minutes=5), 1100)
    end = close(OpenStay(EnteredAs.TEMP, entered), TARIFF, [paid], NOW + timedelta(minutes=5))
    assert end is not None
    assert (end.total, end.paid, end.owed) == (1100, 1100, 0)


def test_a_lot_without_a_tariff_charges_nothing() -> None:
    cost = charge(OpenStay(EnteredAs.TEMP, NOW - DAY), {}, [Payment(NOW, 100)], NOW)
    assert (cost.total, cost.paid, cost.due) == (0, 100, 0)


def test_an_exit_read_older_than_the_entry_does_not_close_the_stay() -> None:
    assert close(OpenStay(EnteredAs.TEMP, NOW), TARIFF, [], NOW - timedelta(seconds=1)) is None


# --- properties: the live decision and the recorded stay agree ----------------------------------

moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
offsets = st.timedeltas(min_value=-40 * DAY, max_value=40 * DAY)


@st.composite
def lots(draw: st.DrawFn) -> LotPolicy:
    grace = draw(st.integers(0, 10))
    payable = draw(st.integers(grace, 15))
    return LotPolicy(draw(st.booleans()), grace, payable)


@st.composite
def passes(draw: st.DrawFn, at: datetime) -> PassView | None:
    if draw(st.booleans()) and draw(st.booleans()):
        return None
    start = at + draw(offsets)
    end = start + draw(st.timedeltas(min_value=timedelta(0), max_value=60 * DAY))
    spaces = draw(st.integers(1, 3))
    return PassView(start, end, spaces, draw(st.integers(0, 4)))


@given(data=st.data(), at=moments, lot=lots(), plate=st.sampled_from(["粤B12345", "", None]))
def test_the_stay_a_read_starts_agrees_with_the_live_decision(
    data: st.DataObject, at: datetime, lot: LotPolicy, plate: str | None
) -> None:
    monthly = data.draw(passes(at))
    scenario = decide(Situation(at, Direction.ENTRY, plate, lot, monthly))
    recorded = entered_as(plate, monthly, lot, at)  # what either path records for this read
    if not plate:
        assert recorded is None
        assert not scenario.opens
        return
    # a pass stay exactly when the live decision welcomes a pass holder
    assert (recorded is EnteredAs.PASS) == (scenario.id == "entry.monthly_valid")
    if scenario.opens:  # the live path starts a stay: the same one
        expected = {"entry.monthly_valid": EnteredAs.PASS, "entry.temp_allowed": EnteredAs.TEMP}
        assert recorded is expected[scenario.id]
    else:  # the live path keeps it out; let in by a camera on its own, it is temp
        assert recorded is EnteredAs.TEMP


@given(
    data=st.data(),
    at=moments,
    lot=lots(),
    how=st.sampled_from(list(EnteredAs)),
    hours=st.floats(0, 72),
    paid=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 5000)), max_size=3),
)
def test_an_exit_records_as_owed_what_the_live_decision_counts_as_due(
    data: st.DataObject,
    at: datetime,
    lot: LotPolicy,
    how: EnteredAs,
    hours: float,
    paid: list[tuple[float, int]],
) -> None:
    monthly = data.draw(passes(at))
    stay = OpenStay(how, at - timedelta(hours=hours))
    payments = [Payment(stay.entered_at + (at - stay.entered_at) * f, a) for f, a in paid]
    due = charge(stay, TARIFF, payments, at).due
    end = close(stay, TARIFF, payments, at)
    assert end is not None
    assert end.owed == due
    if how is EnteredAs.PASS:
        assert end.owed == 0
    view = StayView(how, due, stay.entered_at)
    scenario = decide(Situation(at, Direction.EXIT, "粤B12345", lot, monthly, view))
    if scenario.opens:  # the live path lets the car out: it owes nothing then
        assert end.owed == 0


# --- pass standings as ranges of valid_until ------------------------------------------------------


@given(data=st.data(), at=moments, lot=lots())
def test_a_started_pass_is_in_exactly_the_window_of_its_standing(
    data: st.DataObject, at: datetime, lot: LotPolicy
) -> None:
    valid_until = at + data.draw(offsets)
    monthly = PassView(min(valid_until, at) - DAY, valid_until)
    status = monthly.status(at, lot)
    standings = [s for s in PassStatus if s is not PassStatus.NONE]
    holding = [s for s in standings if expiry_window(s, at, lot).holds(valid_until)]
    assert holding == [status]


def test_the_windows_follow_the_lots_thresholds() -> None:
    lot = LotPolicy(False, expired_grace_days=1, expired_payable_days=2)
    window = expiry_window(PassStatus.EXPIRED_PAYABLE, NOW, lot)
    assert (window.since, window.before) == (NOW - 2 * DAY, NOW - DAY)
    with pytest.raises(ValueError, match="none"):
        expiry_window(PassStatus.NONE, NOW, lot)


# --- a lapsed pass's stay (exit.monthly_lapsed asks for a temp order) -------------------------


def _pass_ended(days_ago: float) -> PassView:
    return PassView(NOW - timedelta(days=400), NOW - timedelta(days=days_ago))


@pytest.mark.parametrize("days_ago", [-1, 0.5, 3, 5, 7])
def test_a_running_expired_or_renewable_pass_keeps_its_stay_free(days_ago: float) -> None:
    from eppark.domain.stays import lapsed_cover

    stay = OpenStay(EnteredAs.PASS, NOW - timedelta(days=30))
    seen = lapsed_cover(stay, _pass_ended(days_ago), LOT, NOW)
    assert seen.charged_from is None
    assert charge(seen, TARIFF, [], NOW).due == 0


def test_a_lapsed_passs_stay_is_temp_parking_from_the_passs_end() -> None:
    from eppark.domain.stays import lapsed_cover

    stay = OpenStay(EnteredAs.PASS, NOW - timedelta(days=30))
    monthly = _pass_ended(8)
    seen = lapsed_cover(stay, monthly, LOT, NOW)
    assert seen.charged_from == monthly.valid_until
    expected = compute_fee(parse_rule(TARIFF), monthly.valid_until, NOW)
    got = charge(seen, TARIFF, [], NOW)
    assert (got.total, got.due) == (expected.total, expected.total)
    assert got.due == 8 * 3000  # eight whole days at the daily cap
    paid = Payment(NOW - timedelta(minutes=1), got.due, NOW - timedelta(minutes=2))
    assert charge(seen, TARIFF, [paid], NOW).due == 0  # paid: leaves within the grace
    end = close(seen, TARIFF, [paid], NOW)
    assert end is not None
    assert (end.total, end.paid, end.owed) == (got.due, got.due, 0)


def test_a_car_that_entered_after_its_pass_lapsed_is_charged_from_its_entry() -> None:
    from eppark.domain.stays import lapsed_cover

    # a stay recorded as a pass stay (say, entered on the pass's last day) long after
    stay = OpenStay(EnteredAs.PASS, NOW - timedelta(hours=2, minutes=30))
    seen = lapsed_cover(stay, _pass_ended(10), LOT, NOW)
    assert seen.charged_from == stay.entered_at
    assert charge(seen, TARIFF, [], NOW).due == 500 + 2 * 300


def test_the_lapsed_decision_is_unchanged_by_the_charge() -> None:
    monthly = _pass_ended(8)
    situation = Situation(
        NOW, Direction.EXIT, "粤B12345", LOT, monthly, StayView(EnteredAs.PASS, 24000)
    )
    assert decide(situation).id == "exit.monthly_lapsed"
    assert monthly.status(NOW, LOT) is PassStatus.LAPSED
