"""The sandbox's cashier page in Chromium with a phone's viewport.

The order is sent to the sandbox the way the payment page does it; the phone
opens the cashier, sees the amount and the two buttons, and taps them: cancel
returns to our page and pays nothing, confirm pays once and returns, and the
sandbox's notification (sent over real HTTP by ``deliver_due``) settles it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from playwright.sync_api import Page, ViewportSize, expect, sync_playwright

from eppark.lots.models import Lot
from eppark.orders.models import Order
from eppark.orders.placing import order_for_stay
from eppark.payments import checkout
from eppark.payments.delivery import deliver_due
from eppark.payments.models import Notification, SandboxTrade
from eppark.payments.providers.sandbox import Sandbox
from eppark.stays.models import Stay

pytestmark = pytest.mark.django_db(transaction=True)

RETURN = "/q/result-of-the-payment"
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
def phone(
    chromium_endpoint: str, live_server: object, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Page]:
    """A page in a phone-sized, touch, zh-CN browser context (as ``browser_page`` does it)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    monkeypatch.setitem(connections.settings[DEFAULT_DB_ALIAS], "CONN_MAX_AGE", 0)
    with sync_playwright() as playwright:
        browser = playwright.chromium.connect_over_cdp(chromium_endpoint)
        context = browser.new_context(
            viewport=PHONE,
            device_scale_factor=3,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            user_agent=(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
            ),
        )
        context.set_default_timeout(15_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            connections.close_all()


@pytest.fixture
def order(live_server: Any, settings: Any) -> Order:
    settings.EPPARK_PUBLIC_URL = live_server.url
    lot = Lot.objects.create(
        code="ckcy",
        name="彩科彩悦大厦",
        capacity=10,
        tariff={
            "free_minutes": 0,
            "first": {"minutes": 60, "price": 500},
            "unit": {"minutes": 60, "price": 300},
        },
    )
    now = timezone.now()
    stay = Stay.objects.create(
        lot=lot, plate="粤B12345", entered_as="temp", entered_at=now - timedelta(minutes=30)
    )
    placed = order_for_stay(stay, now)
    assert placed is not None
    return placed


def fits_the_phone(page: Page) -> None:
    """Nothing wider than the screen: no sideways scrolling on a phone."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"]


def test_cancel_then_confirm_on_a_phone(order: Order, phone: Page, live_server: Any) -> None:
    page_payment = checkout.start_page_payment(
        order, Sandbox("wechat"), return_url=RETURN, now=timezone.now()
    )

    phone.goto(page_payment.url)
    expect(phone.get_by_text("¥5.00")).to_be_visible()
    expect(phone.get_by_text("彩科彩悦大厦 停车费 粤B12345")).to_be_visible()
    confirm = phone.get_by_role("button", name="确认支付")
    cancel = phone.get_by_role("button", name="取消支付")
    expect(confirm).to_be_visible()
    expect(cancel).to_be_visible()
    fits_the_phone(phone)
    box = confirm.bounding_box()
    assert box is not None
    assert box["height"] >= 44  # a thumb-sized target
    assert box["width"] >= PHONE["width"] / 2

    cancel.tap()
    phone.wait_for_url(f"{live_server.url}{RETURN}")
    assert SandboxTrade.objects.get().state == "NOTPAY"

    phone.goto(page_payment.url)
    phone.get_by_role("button", name="确认支付").tap()
    phone.wait_for_url(f"{live_server.url}{RETURN}")
    trade = SandboxTrade.objects.get()
    assert trade.state == "SUCCESS"

    # the result page asks the provider (confirm_by_query); the notification comes too
    assert deliver_due(timezone.now()) == 1
    order.refresh_from_db()
    assert order.state == "paid"
    assert order.transaction_id == trade.transaction_id
    assert [n.verdict for n in Notification.objects.all()] == ["pays"]

    # back to the cashier (the back button): it says it is paid, and offers no button
    phone.goto(page_payment.url)
    expect(phone.get_by_text("这笔款项已支付")).to_be_visible()
    expect(phone.get_by_role("button", name="确认支付")).to_have_count(0)
    fits_the_phone(phone)


def test_a_forged_link_on_a_phone(order: Order, phone: Page, live_server: Any) -> None:
    phone.goto(f"{live_server.url}/sandbox/cashier/not-a-token/")
    expect(phone.get_by_text("该支付链接无效。")).to_be_visible()
    fits_the_phone(phone)
