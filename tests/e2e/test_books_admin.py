"""An operator refunds a paid order and re-runs the day's reconciliation in a real browser."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from playwright.sync_api import Page, expect

from eppark.accounts.models import Role
from eppark.accounts.roles import sync_role_groups
from eppark.orders.models import Order, OrderState
from eppark.payments.models import Refund, RefundState
from eppark.payments.providers.sandbox import Sandbox
from eppark.payments.reconcile import reconcile
from tests.integration.factories import build_lot, staff
from tests.integration.test_refunds import pay, unpaid_order

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-not-used"
T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 11:00 on 30 Nov in Shanghai


class Clock:
    def __call__(self) -> datetime:
        return T0


def test_operator_refunds_and_reruns_the_reconciliation(
    live_server: Any, browser_page: Page
) -> None:
    sync_role_groups()  # transactional tests flush the groups the migrations made
    root = User.objects.create_superuser("root", password=PASSWORD)
    a = build_lot("caike", "彩科彩悦大厦", "粤B11111", root)
    staff("op-caike", Role.OPERATOR, [a.lot])
    wechat = Sandbox("wechat", clock=Clock())
    order = pay(unpaid_order(a, "EPT20261130A001", 800, at=T0), wechat, at=T0)
    differs = pay(unpaid_order(a, "EPT20261130A002", 900, at=T0), wechat, at=T0)
    Order.objects.filter(pk=differs.pk).update(paid_amount=750)
    record = reconcile(a.lot, date(2026, 11, 30), wechat, T0 + timedelta(hours=1))
    assert record.differences == 1

    page, base = browser_page, live_server.url
    path = reverse("admin:orders_order_change", args=[order.pk])
    page.goto(base + path)
    page.fill("#id_username", "op-caike")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(base + path)

    page.click(".object-tools a[href$='/refund/']")
    page.click("input[type=submit]")  # no reason: refused, nothing changed
    expect(page.locator(".errorlist")).to_be_visible()
    assert Order.objects.get(pk=order.pk).state == OrderState.PAID
    page.fill("#id_reason", "车主重复缴费")
    page.click("input[type=submit]")
    expect(page).to_have_url(base + path)
    expect(page.locator(".messagelist")).to_contain_text("¥8.00")
    assert Order.objects.get(pk=order.pk).state == OrderState.REFUNDED
    assert Refund.objects.get(order=order).state == RefundState.SUCCEEDED
    expect(page.locator("body")).to_contain_text("车主重复缴费")
    page.screenshot(path="/tmp/eppark-order-refunded.png", full_page=True)

    listing = reverse("admin:payments_reconciliation_changelist")
    page.goto(base + listing)
    expect(page.locator("#result_list")).to_contain_text("1 处差异")
    expect(page.locator("#result_list")).to_contain_text("¥17.00")
    page.screenshot(path="/tmp/eppark-reconciliation-list.png", full_page=True)
    page.click("#result_list tbody a >> nth=0")
    expect(page.locator("body")).to_contain_text("金额不一致")
    expect(page.locator("body")).to_contain_text("¥7.50")
    page.screenshot(path="/tmp/eppark-reconciliation-day.png", full_page=True)

    Order.objects.filter(pk=differs.pk).update(paid_amount=900)  # the books put right
    page.goto(base + listing)
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "rerun")
    page.click("button[name=index]")
    expect(page.locator(".messagelist")).to_contain_text("已重新对账：1 条")
    expect(page.locator("#result_list")).to_contain_text("一致")
    record.refresh_from_db()
    assert record.differences == 0
