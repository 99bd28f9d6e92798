"""The daily reconciliation: our paid orders of a lot against the sandbox's bill (item 5).

Real database; the sandbox provider's own books (``SandboxTrade``) on a clock set
by the test (no sleeping). A day that agrees has no differences; a trade paid at
the provider but closed here, one paid here but unknown to the provider, and
amounts that differ are each flagged; re-running replaces the day's lines; trades
that are no order of ours go to the admins' unmatched reconciliation; the
back office shows it per lot in Chinese with ¥ and red differences.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse

from eppark.orders.models import Order, OrderState
from eppark.payments import refunds
from eppark.payments.models import (
    Difference,
    Reconciliation,
    ReconciliationLine,
    Refund,
    RefundState,
)
from eppark.payments.providers.base import BillLine, Charge, TradeResult, TradeState
from eppark.payments.providers.sandbox import Sandbox
from eppark.payments.reconcile import (
    Ours,
    Theirs,
    business_day,
    compare,
    fold,
    provider_key,
    reconcile,
    reconcile_due,
)
from eppark.payments.settle import settle
from tests.integration.test_refunds import WECHAT_CODE, client_for, pay, unpaid_order, world

pytestmark = pytest.mark.django_db

__all__ = ["world"]  # the fixture, shared with test_refunds

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 11:00 on 30 Nov in Shanghai
DAY = date(2026, 11, 30)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def wechat() -> Sandbox:
    return Sandbox("wechat", clock=Clock(T0))


def paid(lot_world: Any, number: str, provider: Sandbox, amount: int = 800) -> Order:
    return pay(unpaid_order(lot_world, number, amount, at=T0), provider, at=T0)


def lines(record: Reconciliation) -> list[tuple[str, str]]:
    return [(line.out_trade_no, line.difference) for line in record.lines.all()]


def test_a_day_that_agrees_has_no_differences(world: dict[str, Any], wechat: Sandbox) -> None:
    a, b = world["a"], world["b"]
    paid(a, "EPT20261130A001", wechat, 800)
    refunded = paid(a, "EPT20261130A002", wechat, 500)
    paid(b, "EPT20261130B001", wechat, 300)  # another lot's trade in the same bill
    refunds.refund(refunded, world["users"]["operator"], "车主重复缴费")

    record = reconcile(a.lot, DAY, wechat, T0 + timedelta(hours=1))
    assert record.differences == 0
    assert lines(record) == []
    assert (record.ours_count, record.ours_total) == (2, 1300)
    assert (record.theirs_count, record.theirs_total) == (2, 1300)
    assert record.provider == provider_key(wechat) == "sandbox/wechat"
    other = reconcile(b.lot, DAY, wechat, T0 + timedelta(hours=1))
    assert (other.ours_count, other.theirs_count, other.differences) == (1, 1, 0)
    # the next day is empty on both sides
    empty = reconcile(a.lot, DAY + timedelta(days=1), wechat, T0 + timedelta(days=1))
    assert (empty.ours_count, empty.theirs_count, empty.differences) == (0, 0, 0)


def test_differences_are_flagged_and_a_rerun_replaces_them(
    world: dict[str, Any], wechat: Sandbox
) -> None:
    a = world["a"]
    paid(a, "EPT20261130A001", wechat, 800)
    # paid at the provider, but our order closed (the notification never came)
    closed = unpaid_order(a, "EPT20261130A002", 600, at=T0)
    charge = Charge(closed.out_trade_no, 600, "停车费", T0 + timedelta(minutes=10), "http://x/")
    wechat.codepay(charge, WECHAT_CODE)
    Order.objects.filter(pk=closed.pk).update(state=OrderState.CLOSED, closed_at=T0)
    # paid here, unknown to the provider (a payment report the provider never made)
    ghost = unpaid_order(a, "EPT20261130A003", 400, at=T0)
    settle(
        TradeResult(ghost.out_trade_no, TradeState.SUCCESS, "SBXGHOST", 400, T0),
        provider="sandbox",
        channel="wechat",
        now=T0,
    )
    # amounts differ: our books say 750 was paid for a trade of 900
    differs = paid(a, "EPT20261130A004", wechat, 900)
    Order.objects.filter(pk=differs.pk).update(paid_amount=750)

    record = reconcile(a.lot, DAY, wechat, T0 + timedelta(hours=1))
    expected = [
        ("EPT20261130A002", Difference.MISSING_OURS),
        ("EPT20261130A003", Difference.MISSING_THEIRS),
        ("EPT20261130A004", Difference.AMOUNT),
    ]
    assert lines(record) == expected
    assert record.differences == 3
    amount_line = record.lines.get(difference=Difference.AMOUNT)
    assert (amount_line.ours_amount, amount_line.theirs_amount) == (750, 900)
    missing = record.lines.get(difference=Difference.MISSING_OURS)
    assert (missing.ours_state, missing.theirs_state) == ("closed", "SUCCESS")

    # re-running changes nothing: one record, the same lines
    again = reconcile(a.lot, DAY, wechat, T0 + timedelta(hours=2))
    assert again.pk == record.pk
    assert lines(again) == expected
    assert Reconciliation.objects.filter(lot=a.lot, day=DAY).count() == 1
    assert ReconciliationLine.objects.filter(reconciliation=record).count() == 3
    # once our books are put right, the re-run drops the line
    Order.objects.filter(pk=differs.pk).update(paid_amount=900)
    fixed = reconcile(a.lot, DAY, wechat, T0 + timedelta(hours=3))
    assert [n for n, _d in lines(fixed)] == ["EPT20261130A002", "EPT20261130A003"]
    assert fixed.differences == 2


def test_trades_that_are_no_order_of_ours_are_for_the_admins(
    world: dict[str, Any], wechat: Sandbox
) -> None:
    a = world["a"]
    paid(a, "EPT20261130A001", wechat, 800)
    stranger = Charge("EPX20261130Z999", 1500, "其他系统", T0 + timedelta(minutes=10), "http://x/")
    wechat.codepay(stranger, WECHAT_CODE)
    lot_record = reconcile(a.lot, DAY, wechat, T0)
    assert lot_record.differences == 0
    unmatched = reconcile(None, DAY, wechat, T0)
    assert unmatched.lot is None
    assert lines(unmatched) == [("EPX20261130Z999", Difference.MISSING_OURS)]
    assert (unmatched.theirs_count, unmatched.theirs_total) == (1, 1500)
    url = reverse("admin:payments_reconciliation_change", args=[unmatched.pk])
    assert client_for(world["users"]["operator"]).get(url).status_code in (302, 403, 404)
    page = client_for(world["users"]["admin"]).get(url)
    assert page.status_code == 200
    assert "EPX20261130Z999" in page.content.decode()


def test_a_refund_still_processing_is_settled_by_the_bill(
    world: dict[str, Any], wechat: Sandbox
) -> None:
    a = world["a"]
    order = paid(a, "EPT20261130A001", wechat, 800)
    operator = world["users"]["operator"]
    # the provider answered "processing" (the sandbox always finishes: write what it left)
    row = Refund.objects.create(
        order=order,
        lot=a.lot,
        out_refund_no=f"R{order.out_trade_no}-01",
        amount=800,
        reason="车主重复缴费",
        requested_by=operator,
    )
    wechat.refund(order.out_trade_no, row.out_refund_no, 800, 800, row.reason)
    record = reconcile(a.lot, DAY, wechat, T0 + timedelta(hours=1))
    assert record.differences == 0
    row.refresh_from_db()
    assert row.state == RefundState.SUCCEEDED
    order.refresh_from_db()
    assert order.state == OrderState.REFUNDED
    last = Order.history.filter(id=order.pk).latest()
    assert last.history_user == operator
    assert last.history_change_reason.startswith("车主重复缴费")


def test_yesterday_is_reconciled_once_after_ten_in_shanghai(world: dict[str, Any]) -> None:
    before_ten = datetime(2026, 12, 1, 1, 59, tzinfo=UTC)  # 09:59 on 1 Dec in Shanghai
    assert business_day(before_ten) == date(2026, 12, 1)
    assert reconcile_due(before_ten) == []
    assert not Reconciliation.objects.exists()
    after_ten = datetime(2026, 12, 1, 2, 5, tzinfo=UTC)
    done = reconcile_due(after_ten)
    # 2 lots and the unmatched trades, for each of the sandbox's two apps
    assert len(done) == 6
    assert {r.day for r in done} == {DAY}
    assert {r.provider for r in done} == {"sandbox/wechat", "sandbox/alipay"}
    assert reconcile_due(after_ten + timedelta(minutes=1)) == []
    assert Reconciliation.objects.count() == 6


# -- the back office ------------------------------------------------------------------------------


def test_the_reconciliation_reads_in_chinese_with_yuan_and_red_differences(
    world: dict[str, Any], wechat: Sandbox
) -> None:
    a, b = world["a"], world["b"]
    paid(a, "EPT20261130A001", wechat, 800)
    differs = paid(a, "EPT20261130A002", wechat, 900)
    Order.objects.filter(pk=differs.pk).update(paid_amount=750)
    paid(b, "EPT20261130B001", wechat, 300)
    record = reconcile(a.lot, DAY, wechat, T0)
    b_record = reconcile(b.lot, DAY, wechat, T0)
    client = client_for(world["users"]["operator"])

    listing = client.get(reverse("admin:payments_reconciliation_changelist"))
    assert listing.status_code == 200
    text = listing.content.decode()
    assert "每日对账" in text
    assert "¥17.00" in text  # the provider's total
    assert "¥15.50" in text  # ours
    assert "#ba2121" in text  # the red badge of the differences
    assert "重新对账" in text
    assert "福田中心" not in text  # lot B's day is not this operator's

    page = client.get(reverse("admin:payments_reconciliation_change", args=[record.pk]))
    body = page.content.decode()
    assert "EPT20261130A002" in body
    assert "金额不一致" in body
    assert "¥7.50" in body
    assert "¥9.00" in body
    assert client.get(
        reverse("admin:payments_reconciliation_change", args=[b_record.pk])
    ).status_code in (302, 403, 404)

    # 重新对账 by the operator: the books put right, the day agrees
    Order.objects.filter(pk=differs.pk).update(paid_amount=900)
    response = client.post(
        reverse("admin:payments_reconciliation_changelist"),
        {"action": "rerun", "_selected_action": [str(record.pk), str(b_record.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    record.refresh_from_db()
    assert record.differences == 0
    b_before = b_record.run_at
    b_record.refresh_from_db()
    assert b_record.run_at == b_before  # not this operator's lot: untouched
    # an agent may look but not re-run
    agent = client_for(world["users"]["agent"])
    assert (
        "重新对账"
        not in agent.get(reverse("admin:payments_reconciliation_changelist")).content.decode()
    )


def test_the_order_page_shows_payments_in_words(world: dict[str, Any], wechat: Sandbox) -> None:
    a = world["a"]
    order = paid(a, "EPT20261130A001", wechat, 800)
    Order.objects.filter(pk=order.pk).update(
        needs_review=True, review_note="金额待核对", stay=a.stay, monthly_pass=a.monthly_pass
    )
    client = client_for(world["users"]["operator"])
    listing = client.get(reverse("admin:orders_order_changelist"), {"review": "yes"})
    text = listing.content.decode()
    assert "EPT20261130A001" in text
    assert a.order.out_trade_no not in text  # not flagged: filtered out
    assert "¥8.00" in text
    assert "已支付" in text
    assert "需复核" in text
    assert "#ba2121" in text
    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert "金额待核对" in page
    assert reverse("admin:stays_stay_change", args=[a.stay.pk]) in page
    assert reverse("admin:passes_monthlypass_change", args=[a.monthly_pass.pk]) in page
    assert "付款码支付" in page  # the inline of code payments, in Chinese
    assert "支付通知" in page
    assert "沙箱（测试支付）" in page


# -- the comparison's rules (pure) ----------------------------------------------------------------


def test_a_bills_refund_line_folds_into_its_trade() -> None:
    at = T0
    folded = fold(
        [
            BillLine("EPT1", "tx1", 800, TradeState.SUCCESS, at),
            BillLine("EPT1", "tx1", 800, TradeState.REFUND, at),
            BillLine("EPT2", "tx2", 300, TradeState.SUCCESS, at),
            BillLine("EPT3", "tx3", 200, TradeState.REFUND, at),  # paid another day
        ]
    )
    assert folded == {
        "EPT1": Theirs("EPT1", TradeState.REFUND, 800),
        "EPT2": Theirs("EPT2", TradeState.SUCCESS, 300),
        "EPT3": Theirs("EPT3", TradeState.REFUND, 200),
    }


def test_states_agree_as_of_the_day() -> None:
    paid_then_refunded = Ours("EPT1", OrderState.REFUNDED, 800, refunded_later=True)
    refunded_that_day = Ours("EPT2", OrderState.REFUNDED, 800)
    closed = Ours("EPT3", OrderState.CLOSED, 800)
    theirs = {
        "EPT1": Theirs("EPT1", TradeState.SUCCESS, 800),  # the day's bill: still paid
        "EPT2": Theirs("EPT2", TradeState.SUCCESS, 800),
        "EPT3": Theirs("EPT3", TradeState.REFUND, 800),  # charged and given back
    }
    found = compare(
        {"EPT1": paid_then_refunded, "EPT2": refunded_that_day}, {"EPT3": closed}, theirs
    )
    assert [(m.out_trade_no, m.difference) for m in found] == [
        ("EPT2", Difference.STATE),
        ("EPT3", Difference.STATE),
    ]


def test_a_trade_we_hold_paid_through_another_app_is_flagged() -> None:
    alipay_paid = Ours("EPT1", OrderState.PAID, 800, elsewhere=True)
    theirs = {"EPT1": Theirs("EPT1", TradeState.SUCCESS, 800)}
    found = compare({}, {"EPT1": alipay_paid}, theirs)
    assert [(m.out_trade_no, m.difference) for m in found] == [("EPT1", Difference.MISSING_OURS)]
