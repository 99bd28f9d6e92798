"""Refunds from the back office go through the provider (issue 10, item 5).

Real database, the sandbox provider's own books (``SandboxTrade``), the back
office over the Django test client: an operator of the lot refunds a paid order
with a reason and the sandbox gives the money back; a provider's refusal leaves
the order paid and says why; an unpaid order, an agent and another lot's
operator are refused and nothing changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from eppark.accounts.models import Role
from eppark.orders import actions as order_actions
from eppark.orders.models import Channel, Order, OrderState
from eppark.payments import checkout, refunds
from eppark.payments.models import Refund, RefundState, SandboxTrade
from eppark.payments.providers import for_channel
from eppark.payments.providers.base import Provider, TradeState
from eppark.payments.settle import settle
from eppark.records.errors import Refused
from tests.integration.factories import LotWorld, build_lot, staff

pytestmark = pytest.mark.django_db

WECHAT_CODE = "134567890123456780"  # 18 digits, last 0: the sandbox pays at once
ALIPAY_CODE = "2812345678901230"


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    root = User.objects.create_superuser("root", password="pw-not-used")
    a = build_lot("caike", "彩科彩悦大厦", "粤B11111", root)
    b = build_lot("futian", "福田中心", "粤B99999", root)
    users = {
        "admin": staff("admin-1", Role.ADMIN, []),
        "operator": staff("op-caike", Role.OPERATOR, [a.lot]),
        "operator_b": staff("op-futian", Role.OPERATOR, [b.lot]),
        "agent": staff("kf-001", Role.AGENT, [a.lot]),
    }
    return {"a": a, "b": b, "users": users}


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def unpaid_order(
    world: LotWorld, number: str, amount: int = 800, at: datetime | None = None
) -> Order:
    """A temp order of ``world``'s lot, priced at ``at`` (or now) and payable for 10 minutes."""
    at = at or datetime.now(UTC)
    return Order.objects.create(
        kind="temp",
        lot=world.lot,
        plate=world.stay.plate,
        amount=amount,
        out_trade_no=number,
        priced_at=at - timedelta(minutes=1),
        expires_at=at + timedelta(minutes=10),
    )


def pay(order: Order, provider: Provider, at: datetime | None = None) -> Order:
    """Pay ``order`` with a payment code at ``provider`` and settle it as the robot path does."""
    at = at or datetime.now(UTC)
    code = WECHAT_CODE if provider.channel == "wechat" else ALIPAY_CODE
    result = provider.codepay(checkout.charge_for(order, provider), code)
    assert result.state is TradeState.SUCCESS
    settled = settle(result, provider=provider.name, channel=provider.channel, now=at)
    assert settled.order is not None
    assert settled.order.state == OrderState.PAID
    return settled.order


def paid_order(world: LotWorld, number: str, amount: int = 800, channel: str = "wechat") -> Order:
    return pay(unpaid_order(world, number, amount), for_channel(channel))


def refund_url(order: Order) -> str:
    return reverse("admin:orders_order_refund", args=[order.pk])


def trade(order: Order) -> SandboxTrade:
    return SandboxTrade.objects.get(out_trade_no=order.out_trade_no)


# -- the refund goes through the provider ---------------------------------------------------------


def test_an_operator_refunds_a_paid_order_through_the_sandbox(world: dict[str, Any]) -> None:
    order = paid_order(world["a"], "EPT20261201A001")
    operator = world["users"]["operator"]
    client = client_for(operator)
    page = client.get(refund_url(order))
    assert page.status_code == 200
    assert client.post(refund_url(order), {"reason": ""}).status_code == 200  # reason required
    assert not Refund.objects.filter(order=order).exists()

    response = client.post(refund_url(order), {"reason": "车主重复缴费"}, follow=True)
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.state == OrderState.REFUNDED
    refund = Refund.objects.get(order=order)
    assert refund.state == RefundState.SUCCEEDED
    assert (refund.amount, refund.reason, refund.requested_by) == (800, "车主重复缴费", operator)
    assert refund.lot == world["a"].lot
    assert refund.provider_refund_id
    assert refund.finished_at is not None
    assert (trade(order).state, trade(order).refunded) == (TradeState.REFUND, 800)
    # audited: the order's history says who and why; the page shows the refund
    last = Order.history.filter(id=order.pk).latest()
    assert (last.history_user, last.history_change_reason) == (operator, "车主重复缴费")
    assert last.state == OrderState.REFUNDED
    body = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert refund.out_refund_no in body
    assert "¥8.00" in body
    assert "车主重复缴费" in body
    # refunding again is refused in words; the sandbox gave the money back once
    again = client.post(refund_url(order), {"reason": "再退一次"})
    assert again.status_code == 200
    assert "不能变为" in again.content.decode()
    assert trade(order).refunded == 800
    assert Refund.objects.filter(order=order).count() == 1


def test_an_admin_refunds_an_alipay_order(world: dict[str, Any]) -> None:
    order = paid_order(world["a"], "EPT20261201A002", amount=1250, channel="alipay")
    done = refunds.refund(order, world["users"]["admin"], "系统故障多收")
    assert done.state == RefundState.SUCCEEDED
    assert Order.objects.get(pk=order.pk).state == OrderState.REFUNDED
    assert trade(order).state == TradeState.REFUND
    assert trade(order).channel == "alipay"


def test_a_provider_refusal_fails_the_refund_and_leaves_the_order_paid(
    world: dict[str, Any],
) -> None:
    order = paid_order(world["a"], "EPT20261201A003")
    # the money was already given back at the provider's merchant platform
    for_channel("wechat").refund(order.out_trade_no, "RMANUAL1", 800, 800, "商户平台退款")
    history_before = Order.history.filter(id=order.pk).count()
    client = client_for(world["users"]["operator"])
    response = client.post(refund_url(order), {"reason": "车主投诉"})
    assert response.status_code == 200  # the form again, with the provider's words
    text = response.content.decode()
    assert "NOT_ENOUGH" in text
    order.refresh_from_db()
    assert order.state == OrderState.PAID
    assert Order.history.filter(id=order.pk).count() == history_before
    refund = Refund.objects.get(order=order)
    assert refund.state == RefundState.FAILED
    assert "NOT_ENOUGH" in refund.detail
    assert refund.requested_by == world["users"]["operator"]
    # the refunds list shows it failed, in words
    listing = client.get(reverse("admin:payments_refund_changelist")).content.decode()
    assert refund.out_refund_no in listing
    assert str(RefundState.FAILED.label) in listing or "失败" in listing


def test_a_cash_order_is_refunded_without_a_provider_call(world: dict[str, Any]) -> None:
    order = unpaid_order(world["a"], "EPT20261201A004", amount=500)
    Order.objects.filter(pk=order.pk).update(
        state=OrderState.PAID, channel=Channel.CASH, paid_at=datetime.now(UTC), paid_amount=500
    )
    done = refunds.refund(order, world["users"]["operator"], "现金退还车主")
    assert done.state == RefundState.SUCCEEDED
    assert done.amount == 500
    assert Order.objects.get(pk=order.pk).state == OrderState.REFUNDED
    assert not SandboxTrade.objects.filter(out_trade_no=order.out_trade_no).exists()


def test_only_the_whole_paid_amount_is_refunded(world: dict[str, Any]) -> None:
    order = paid_order(world["a"], "EPT20261201A005")
    with pytest.raises(Refused, match=r"¥8\.00"):
        refunds.refund(order, world["users"]["operator"], "部分退款", amount=300)
    assert Order.objects.get(pk=order.pk).state == OrderState.PAID
    assert not Refund.objects.filter(order=order).exists()
    assert trade(order).refunded == 0


# -- who may, and what may be refunded ------------------------------------------------------------


def test_an_unpaid_order_is_not_refunded(world: dict[str, Any]) -> None:
    order = unpaid_order(world["a"], "EPT20261201A006")
    client = client_for(world["users"]["operator"])
    response = client.post(refund_url(order), {"reason": "想退款"})
    assert response.status_code == 200
    assert "不能变为" in response.content.decode()
    assert Order.objects.get(pk=order.pk).state == OrderState.CREATED
    assert not Refund.objects.exists()
    with pytest.raises(Refused):
        order_actions.refund(order, world["users"]["operator"], "想退款")


def test_agents_and_another_lots_operator_may_not_refund(world: dict[str, Any]) -> None:
    order = paid_order(world["a"], "EPT20261201A007")
    url = refund_url(order)
    agent = client_for(world["users"]["agent"])
    assert agent.get(url).status_code == 403
    assert agent.post(url, {"reason": "客服退款"}).status_code == 403
    other = client_for(world["users"]["operator_b"])
    for response in (other.get(url), other.post(url, {"reason": "别的车场"})):
        assert response.status_code in (302, 403, 404)
    assert other.get(reverse("admin:orders_order_change", args=[order.pk])).status_code in (
        302,
        403,
        404,
    )
    for user in (world["users"]["agent"], world["users"]["operator_b"]):
        with pytest.raises(Refused):
            refunds.refund(order, user, "直接调用")
    order.refresh_from_db()
    assert order.state == OrderState.PAID
    assert not Refund.objects.exists()
    assert trade(order).refunded == 0
    # the agent sees no refund button on the order
    page = agent.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert url not in page


def test_a_refund_already_processing_blocks_a_second_one(world: dict[str, Any]) -> None:
    order = paid_order(world["a"], "EPT20261201A008")
    operator = world["users"]["operator"]
    Refund.objects.create(
        order=order,
        lot=order.lot,
        out_refund_no=f"R{order.out_trade_no}-01",
        amount=800,
        reason="第一次",
        requested_by=operator,
    )
    with pytest.raises(Refused):
        refunds.refund(order, operator, "第二次")
    assert Refund.objects.filter(order=order).count() == 1
    assert trade(order).refunded == 0


def requested(order: Order, user: User) -> Refund:
    """A refund the provider answered "processing" for (what ``refunds.refund`` leaves)."""
    return Refund.objects.create(
        order=order,
        lot=order.lot,
        out_refund_no=f"R{order.out_trade_no}-01",
        amount=order.paid_amount or order.amount,
        reason="车主重复缴费",
        requested_by=user,
    )


def test_a_processing_refund_is_asked_about_again_from_the_refunds_list(
    world: dict[str, Any],
) -> None:
    order = paid_order(world["a"], "EPT20261201A009")
    operator = world["users"]["operator"]
    row = requested(order, operator)
    listing = reverse("admin:payments_refund_changelist")
    agent = client_for(world["users"]["agent"])
    assert "查询退款结果" not in agent.get(listing).content.decode()
    agent.post(listing, {"action": "recheck", "_selected_action": [str(row.pk)]})
    assert Refund.objects.get(pk=row.pk).state == RefundState.REQUESTED
    other = client_for(world["users"]["operator_b"])
    other.post(listing, {"action": "recheck", "_selected_action": [str(row.pk)]})
    assert Refund.objects.get(pk=row.pk).state == RefundState.REQUESTED

    client = client_for(operator)
    assert "查询退款结果" in client.get(listing).content.decode()
    response = client.post(
        listing, {"action": "recheck", "_selected_action": [str(row.pk)]}, follow=True
    )
    assert response.status_code == 200
    row.refresh_from_db()
    assert row.state == RefundState.SUCCEEDED
    order.refresh_from_db()
    assert order.state == OrderState.REFUNDED
    last = Order.history.filter(id=order.pk).latest()
    assert (last.history_user, last.history_change_reason) == (operator, "车主重复缴费")
    assert trade(order).refunded == 800
    # asked once more: the provider refunds once per refund number
    refunds.recheck(row)
    assert trade(order).refunded == 800


def test_processing_refunds_are_asked_about_again_by_the_daily_run(
    world: dict[str, Any],
) -> None:
    order = paid_order(world["a"], "EPT20261201A010")
    row = requested(order, world["users"]["operator"])
    assert refunds.recheck_pending(datetime.now(UTC)) == 0  # too fresh
    assert refunds.recheck_pending(datetime.now(UTC) + timedelta(minutes=6)) == 1
    assert Refund.objects.get(pk=row.pk).state == RefundState.SUCCEEDED
    assert Order.objects.get(pk=order.pk).state == OrderState.REFUNDED
