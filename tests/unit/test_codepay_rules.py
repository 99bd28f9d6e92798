"""The payment-code rules (``eppark.domain.billing``): routing by prefix, masking, the
USERPAYING polling schedule, and the queries after an error before a reverse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eppark.domain import billing

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("code", "channel"),
    [
        ("134567890123456780", "wechat"),  # 18 digits, 10–15
        ("104567890123456781", "wechat"),
        ("154567890123456782", "wechat"),
        (" 134567890123456780 ", "wechat"),  # a scanner's stray spaces
        ("2845678901234560", "alipay"),  # 16 digits, 25–30
        ("304567890123456789012345", "alipay"),  # 24 digits
        ("254567890123456783", "alipay"),
        ("164567890123456780", None),  # WeChat length, prefix 16
        ("13456789012345678", None),  # 17 digits
        ("1345678901234567890", None),  # 19 digits
        ("244567890123456780", None),  # 24: neither
        ("3145678901234567", None),  # 31
        ("304567890123456789012345 6", None),
        ("28456789012345", None),  # 14 digits
        ("3045678901234567890123456", None),  # 25 digits
        ("https://pay.example/q/abc", None),
        ("13456789012345678a", None),
        ("", None),
    ],
)
def test_a_payment_code_is_routed_by_its_prefix(code: str, channel: str | None) -> None:
    assert billing.payment_code_channel(code) == channel


def test_a_kept_code_shows_only_its_ends() -> None:
    assert billing.mask_code("134567890123456780") == "13************6780"
    assert billing.mask_code("2845678901234560") == "28**********4560"
    assert billing.mask_code("12345") == "****"


def _schedule(give_up: float = 45) -> list[float]:
    """The times (s after the charge) at which a code still USERPAYING is queried."""
    times: list[float] = []
    action, when = billing.codepay_next_step(T0, T0, give_up=timedelta(seconds=give_up))
    while action == "query":
        assert when is not None
        elapsed = (when - T0).total_seconds()
        times.append(elapsed)
        action, when = billing.codepay_next_step(T0, when, give_up=timedelta(seconds=give_up))
    return times


def test_userpaying_is_queried_soon_then_every_ten_seconds_up_to_45() -> None:
    assert _schedule() == [3, 6, 12, 22, 32, 42, 45]


def test_after_the_last_query_it_is_reversed() -> None:
    assert billing.codepay_next_step(T0, s(45)) == ("reverse", None)
    assert billing.codepay_next_step(T0, s(300)) == ("reverse", None)
    assert billing.codepay_next_step(T0, s(44.9))[0] == "query"


def test_a_late_poll_never_goes_past_the_give_up_time() -> None:
    # a worker that was busy polls late: the next query is still at 45 s at the latest
    action, when = billing.codepay_next_step(T0, s(40))
    assert (action, when) == ("query", s(45))
    # a poll that comes early (before the first query) waits for it
    assert billing.codepay_next_step(T0, s(1)) == ("query", s(3))


def test_a_shorter_give_up_time_for_tests() -> None:
    assert _schedule(give_up=2) == [2]
    assert billing.codepay_next_step(T0, s(2), give_up=timedelta(seconds=2)) == ("reverse", None)


def test_after_an_error_queries_come_first_then_the_reverse() -> None:
    steps = []
    now = T0
    checks = 0
    while True:
        action, when = billing.codepay_after_error(checks, now)
        if action == "reverse":
            break
        assert when is not None
        steps.append((when - now).total_seconds())
        now, checks = when, checks + 1
    assert steps == [1, 2, 4, 8]  # four queries over 15 s, then reverse
    assert billing.codepay_after_error(9, T0) == ("reverse", None)
