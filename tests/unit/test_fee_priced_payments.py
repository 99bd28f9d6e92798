"""A payment settles the stay up to when its order was priced; the grace runs from paying."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from eppark.domain.tariff import Payment, compute_fee, parse_rule

RULE = parse_rule(
    {
        "free_minutes": 30,
        "first": {"minutes": 60, "price": 500},
        "unit": {"minutes": 60, "price": 300},
        "exit_grace_minutes": 15,
    }
)
ENTERED = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_the_minutes_between_pricing_and_paying_are_not_charged_again() -> None:
    priced = ENTERED + timedelta(minutes=119)  # fee then: 800 (first hour, one unit)
    paid = ENTERED + timedelta(minutes=123)  # a new unit began at 120 minutes: 1100 by now
    payment = Payment(paid, 800, priced)
    at_exit = compute_fee(RULE, ENTERED, paid + timedelta(minutes=10), [payment])
    assert (at_exit.due, at_exit.within_grace) == (0, True)
    without_pricing_time = compute_fee(
        RULE, ENTERED, paid + timedelta(minutes=10), [Payment(paid, 800)]
    )
    assert without_pricing_time.due == 300  # the old rule: the new unit is owed


def test_the_grace_runs_from_the_payment_not_the_pricing() -> None:
    priced = ENTERED + timedelta(minutes=100)
    paid = ENTERED + timedelta(minutes=105)
    payment = Payment(paid, 800, priced)
    inside = compute_fee(RULE, ENTERED, paid + timedelta(minutes=15), [payment])
    assert inside.within_grace
    after = compute_fee(RULE, ENTERED, paid + timedelta(minutes=16), [payment])
    assert not after.within_grace
    assert after.due == after.total - 800


def test_a_pricing_time_after_the_payment_counts_as_the_payment_time() -> None:
    paid = ENTERED + timedelta(minutes=105)
    late_priced = Payment(paid, 800, paid + timedelta(hours=3))
    result = compute_fee(RULE, ENTERED, paid + timedelta(minutes=5), [late_priced])
    assert (result.due, result.within_grace) == (0, True)
    short = compute_fee(RULE, ENTERED, paid + timedelta(minutes=5), [Payment(paid, 100, paid)])
    assert not short.within_grace
