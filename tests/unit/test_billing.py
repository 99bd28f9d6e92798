"""Payment rules: code routing, the codepay schedule, notification verdicts, renewals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from eppark.domain import billing
from eppark.domain.billing import OrderFacts, Verdict

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("code", "channel"),
    [
        ("134567890123456780", "wechat"),  # 18 digits, 13
        ("100000000000000000", "wechat"),
        ("159999999999999999", "wechat"),
        ("160000000000000000", None),  # 16 is not a WeChat prefix
        ("13456789012345678", None),  # 17 digits
        ("2812345678901234", "alipay"),  # 16 digits, 28
        ("300000000000000000000000", "alipay"),  # 24 digits, 30
        ("3000000000000000000000000", None),  # 25 digits
        ("241234567890123456", None),  # 24 is not an Alipay prefix
        ("311234567890123456", None),
        ("https://example.com/q/abc", None),
        ("", None),
        (" 134567890123456780 ", "wechat"),
    ],
)
def test_payment_codes_are_routed_by_prefix(code: str, channel: str | None) -> None:
    assert billing.payment_code_channel(code) == channel


def test_a_payment_code_is_kept_masked() -> None:
    assert billing.mask_code("134567890123456780") == "13************6780"
    assert billing.mask_code("123") == "****"


def test_userpaying_is_queried_then_reversed_after_45_seconds() -> None:
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    step, when = billing.codepay_next_step(start, start + timedelta(seconds=3))
    assert step == "query"
    assert when is not None
    assert start < when <= start + billing.CODEPAY_GIVE_UP_AFTER
    step, when = billing.codepay_next_step(start, start + timedelta(seconds=40))
    assert (step, when) == ("query", start + billing.CODEPAY_GIVE_UP_AFTER)
    assert billing.codepay_next_step(start, start + timedelta(seconds=45)) == ("reverse", None)


ORDER = OrderFacts("EPT1", 500, "paying", "")


@pytest.mark.parametrize(
    ("order", "number", "amount", "success", "transaction", "expected"),
    [
        (ORDER, "EPT1", 500, True, "W1", Verdict.PAYS),
        (OrderFacts("EPT1", 500, "created", ""), "EPT1", 500, True, "W1", Verdict.PAYS),
        (OrderFacts("EPT1", 500, "closed", ""), "EPT1", 500, True, "W1", Verdict.PAYS_LATE),
        (ORDER, "EPT1", 499, True, "W1", Verdict.MISMATCH),
        (ORDER, "EPT1", None, True, "W1", Verdict.MISMATCH),
        (ORDER, "EPT2", 500, True, "W1", Verdict.MISMATCH),
        (OrderFacts("EPT1", 500, "paid", "W1"), "EPT1", 500, True, "W1", Verdict.DUPLICATE),
        (OrderFacts("EPT1", 500, "refunded", "W1"), "EPT1", 500, True, "W1", Verdict.DUPLICATE),
        (OrderFacts("EPT1", 500, "paid", "W1"), "EPT1", 500, True, "W2", Verdict.MISMATCH),
        (ORDER, "EPT1", 500, False, "", Verdict.NOT_PAID),
        (None, "EPT9", 500, True, "W1", Verdict.UNKNOWN_ORDER),
    ],
)
def test_a_providers_report_pays_only_our_order_for_our_amount_once(
    order: OrderFacts | None,
    number: str,
    amount: int | None,
    success: bool,
    transaction: str,
    expected: Verdict,
) -> None:
    got = billing.verdict(
        order, out_trade_no=number, amount=amount, success=success, transaction_id=transaction
    )
    assert got is expected


def test_trade_numbers_fit_wechat_and_alipay() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    number = billing.new_out_trade_no("temp", now, "a1b2c3d4e5ff")
    assert number.startswith("EPT261201120000")
    assert 6 <= len(number) <= 32
    assert number.isalnum()
    assert billing.new_out_trade_no("temp", now, "x") != billing.new_out_trade_no("temp", now, "y")


def test_default_renewal_options_follow_the_monthly_price() -> None:
    options = billing.renewal_options(30000, None)
    assert [(o.months, o.price) for o in options] == [
        (1, 30000),
        (3, 90000),
        (6, 180000),
        (12, 360000),
    ]
    assert billing.renewal_options(0, None) == []
    own = billing.renewal_options(30000, [{"months": 3, "price": 85000}, {"months": 1, "price": 1}])
    assert [(o.months, o.price) for o in own] == [(1, 1), (3, 85000)]


@pytest.mark.parametrize(
    ("until", "months", "expected"),
    [
        (datetime(2026, 12, 31, 23, 59, 59), 1, datetime(2027, 1, 31, 23, 59, 59)),
        (datetime(2027, 1, 31, 23, 59, 59), 1, datetime(2027, 2, 28, 23, 59, 59)),
        (datetime(2028, 1, 31, 23, 59, 59), 1, datetime(2028, 2, 29, 23, 59, 59)),
        (datetime(2026, 11, 15, 0, 0), 12, datetime(2027, 11, 15, 0, 0)),
        (datetime(2026, 10, 31, 12, 0), 3, datetime(2027, 1, 31, 12, 0)),
    ],
)
def test_a_renewal_continues_from_the_current_end(
    until: datetime, months: int, expected: datetime
) -> None:
    got = billing.renewed_until(until.replace(tzinfo=SHANGHAI), months, SHANGHAI)
    assert got == expected.replace(tzinfo=SHANGHAI)


def test_a_renewal_counts_months_in_the_lots_time_zone() -> None:
    # 2027-01-31 23:00 in Shanghai is 15:00 UTC: one month on is the end of February there
    until = datetime(2027, 1, 31, 15, 0, tzinfo=UTC)
    got = billing.renewed_until(until, 1, SHANGHAI)
    assert got.astimezone(SHANGHAI) == datetime(2027, 2, 28, 23, 0, tzinfo=SHANGHAI)


def test_temporary_plates_are_never_real_plates() -> None:
    from eppark.domain.plates import classify

    plate = billing.temp_plate(42)
    assert plate == "临000042"
    assert billing.is_temp_plate(plate)
    assert classify(plate) is None
    assert not billing.is_temp_plate("粤B12345")
