"""Properties of the fee engine, and the engine against the naive reference, on random input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eppark.domain.tariff import Payment, TariffRule, compute_fee, parse_rule
from eppark.domain.tariff.reference import reference_cost, reference_fee

ZONES = ["Asia/Shanghai", "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
OFFSETS = [timezone(timedelta(hours=h)) for h in (-5, 0, 1, 8)]
# Days around DST changes in the zones above, plus ordinary days.
DAYS = [
    datetime(2026, 3, 7, tzinfo=UTC),
    datetime(2026, 3, 28, tzinfo=UTC),
    datetime(2026, 4, 4, tzinfo=UTC),
    datetime(2026, 10, 3, tzinfo=UTC),
    datetime(2026, 10, 24, tzinfo=UTC),
    datetime(2026, 10, 31, tzinfo=UTC),
    datetime(2026, 6, 15, tzinfo=UTC),
    datetime(2026, 11, 27, tzinfo=UTC),
]
SLOW = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

periods = st.builds(
    lambda minutes, price: {"minutes": minutes, "price": price},
    st.sampled_from([1, 7, 15, 30, 60, 90, 100, 720, 1440, 2000]),
    st.integers(0, 900),
)


@st.composite
def segments(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Windows that tile the day, in a random order."""
    grid = draw(st.sampled_from([1, 15, 60, 240]))
    starts = sorted(draw(st.sets(st.integers(0, 1440 // grid - 1), min_size=1, max_size=4)))
    out = []
    for k, start in enumerate(starts):
        end = starts[(k + 1) % len(starts)]
        window: dict[str, Any] = {
            "from": f"{start * grid // 60:02d}:{start * grid % 60:02d}",
            "to": f"{end * grid // 60:02d}:{end * grid % 60:02d}",
            "unit": draw(periods),
        }
        if draw(st.booleans()):
            window["cap"] = draw(st.integers(0, 3000))
        out.append(window)
    return draw(st.permutations(out))


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    """Any valid RULE."""
    rule: dict[str, Any] = {
        "timezone": draw(st.sampled_from(ZONES)),
        "free_minutes": draw(st.sampled_from([0, 0, 15, 30, 61, 200])),
        "free_minutes_deducted": draw(st.booleans()),
        "exit_grace_minutes": draw(st.sampled_from([0, 15, 30])),
    }
    if draw(st.booleans()):
        rule["first"] = draw(periods)
    if draw(st.booleans()):
        rule["cap"] = {
            "price": draw(st.integers(0, 5000)),
            "per": draw(st.sampled_from(["24h", "day"])),
        }
    if draw(st.sampled_from([True, True, False])):
        rule["segments"] = draw(segments())
    else:
        rule["unit"] = draw(periods)
    return rule


@st.composite
def stays(draw: st.DrawFn, longest: timedelta = timedelta(days=3)) -> tuple[datetime, datetime]:
    """(entered_at, at) in random offsets, often across a DST change."""
    entered = draw(st.sampled_from(DAYS)) + timedelta(seconds=draw(st.integers(0, 3 * 86400)))
    days = draw(st.sampled_from(range(longest.days + 1)))
    seconds = draw(st.sampled_from([0, 1, 59, 60, 61, 1800, 1801, 3600]) | st.integers(0, 86399))
    length = min(longest, timedelta(days=days, seconds=seconds))
    return (
        entered.astimezone(draw(st.sampled_from(OFFSETS))),
        (entered + length).astimezone(draw(st.sampled_from(OFFSETS))),
    )


def total(rule: TariffRule, entered_at: datetime, at: datetime) -> int:
    """The engine's total."""
    return compute_fee(rule, entered_at, at).total


@SLOW
@given(rules(), stays())
def test_property_engine_equals_reference(
    raw: dict[str, Any], stay: tuple[datetime, datetime]
) -> None:
    rule = parse_rule(raw)
    assert total(rule, *stay) == reference_cost(rule, *stay)


@settings(max_examples=15, deadline=None)
@given(rules(), stays(longest=timedelta(days=40)))
def test_property_engine_equals_reference_on_long_stays(
    raw: dict[str, Any], stay: tuple[datetime, datetime]
) -> None:
    rule = parse_rule(raw)
    assert total(rule, *stay) == reference_cost(rule, *stay)


@SLOW
@given(rules(), stays(), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 3000)), max_size=3))
def test_property_payments_equal_reference(
    raw: dict[str, Any], stay: tuple[datetime, datetime], paid: list[tuple[float, int]]
) -> None:
    rule = parse_rule(raw)
    entered_at, at = stay
    payments = [(entered_at + (at - entered_at) * share, amount) for share, amount in paid]
    result = compute_fee(rule, entered_at, at, [Payment(when, amount) for when, amount in payments])
    expected = reference_fee(rule, entered_at, at, payments)
    assert (result.total, result.paid, result.due, result.within_grace) == expected
    assert 0 <= result.due <= result.total


@settings(max_examples=150, deadline=None)
@given(rules(), stays(longest=timedelta(days=30)), st.integers(0, 3 * 86400))
def test_property_fee_never_decreases_as_the_stay_grows(
    raw: dict[str, Any], stay: tuple[datetime, datetime], more: int
) -> None:
    rule = parse_rule(raw)
    entered_at, at = stay
    assert total(rule, entered_at, at) <= total(rule, entered_at, at + timedelta(seconds=more))


@settings(max_examples=100, deadline=None)
@given(rules(), stays(), st.floats(0, 1))
def test_property_zero_within_free_minutes(
    raw: dict[str, Any], stay: tuple[datetime, datetime], share: float
) -> None:
    rule = parse_rule(raw)
    entered_at = stay[0]
    at = entered_at + timedelta(minutes=rule.free_minutes) * share
    assert total(rule, entered_at, at) == 0


@settings(max_examples=150, deadline=None)
@given(rules(), stays(longest=timedelta(days=30)))
def test_property_never_more_than_the_caps_allow(
    raw: dict[str, Any], stay: tuple[datetime, datetime]
) -> None:
    rule = parse_rule(raw)
    entered_at, at = stay
    fee = total(rule, entered_at, at)
    if rule.cap and rule.cap.per == "24h":
        windows = -(-(at - entered_at) // timedelta(days=1))
        assert fee <= max(1, windows) * rule.cap.price
    elif rule.cap:
        # Calendar days (at most 25 h, at least 23 h in these zones) a unit can start in.
        days = (at - entered_at) // timedelta(hours=23) + 2
        assert fee <= days * rule.cap.price
    if rule.segments and all(s.cap is not None for s in rule.segments):
        stretches = (
            (at - entered_at) // timedelta(hours=23) * len(rule.segments) + len(rule.segments) + 1
        )
        assert fee <= stretches * max(s.cap or 0 for s in rule.segments)


@settings(max_examples=60, deadline=None)
@given(rules(), st.lists(stays(longest=timedelta(days=30)), min_size=8, max_size=8))
def test_property_learnt_repetitions_change_nothing(
    raw: dict[str, Any], many: list[tuple[datetime, datetime]]
) -> None:
    rule = parse_rule(raw)  # reused: repetitions learnt on one stay serve the next
    for entered_at, at in many:
        assert total(rule, entered_at, at) == total(parse_rule(raw), entered_at, at)
