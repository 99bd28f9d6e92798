"""The drivers' pages in Chromium on a phone-sized screen, against the live server.

A car is read by the real gate loop (the camera's push), the robot's QR URL is
taken from its ``present`` command, and the phone opens it: unplated entry →
ticket → unplated exit → ``立即支付`` → the sandbox's cashier (``确认支付``) →
``支付成功``, with the gate's ``open`` command in the outbox; then the temp
quick-pay and a monthly renewal the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from playwright.sync_api import Page, expect, sync_playwright

from eppark.domain import billing
from eppark.orders.models import Order, OrderState
from eppark.stays.models import Stay, UnplatedTicket
from tests.integration.test_qr_pages import Site

pytestmark = pytest.mark.django_db(transaction=True)

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
CONFIRM = re.compile("确认支付|Confirm payment")  # the sandbox cashier's button


@pytest.fixture
def phone(
    chromium_endpoint: str,
    live_server: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Page]:
    """A phone (375×667, touch, zh-CN, an iPhone's user agent) on the live server."""
    settings.EPPARK_PUBLIC_URL = live_server.url  # the cashier and the result page live here
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    monkeypatch.setitem(connections.settings[DEFAULT_DB_ALIAS], "CONN_MAX_AGE", 0)
    with sync_playwright() as playwright:
        browser = playwright.chromium.connect_over_cdp(chromium_endpoint)
        context = browser.new_context(
            viewport={"width": 375, "height": 667},
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            user_agent=IPHONE,
        )
        context.set_default_timeout(15_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            connections.close_all()


@pytest.fixture
def site(transactional_db: Any) -> Site:
    return Site()


def fits_the_screen(page: Page) -> None:
    """Readable without zooming: nothing wider than the phone's screen."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page is {width}px wide"


def open_qr(page: Page, base: str, site: Site, direction: str) -> None:
    page.goto(base + site.qr_path(direction))
    fits_the_screen(page)


def pay_through_the_cashier(page: Page) -> None:
    """``立即支付`` → the sandbox's cashier → ``确认支付`` → back on the result page."""
    page.get_by_role("button", name="立即支付").click()
    expect(page).to_have_url(re.compile(r"/sandbox/cashier/"))
    page.get_by_role("button", name=CONFIRM).click()
    expect(page).to_have_url(re.compile(r"/pay/"))
    expect(page.get_by_text("支付成功")).to_be_visible()
    fits_the_screen(page)


def test_an_unplated_car_gets_in_and_out_paying_on_the_phone(
    site: Site, phone: Page, live_server: Any
) -> None:
    base = live_server.url
    site.push("entry", None)
    open_qr(phone, base, site, "entry")
    phone.screenshot(path="/tmp/eppark-unplated-entry.png")
    phone.get_by_label("手机号").fill("13800138000")
    phone.get_by_role("button", name="确认进场").click()
    expect(phone.locator("#temp-plate")).to_have_text(billing.temp_plate(1))
    expect(phone.get_by_text("出场时请在出口扫码")).to_be_visible()
    fits_the_screen(phone)
    assert site.voices("entry")[-1] == "欢迎光临"
    assert len(site.commands("entry", "open")) == 1

    ticket = UnplatedTicket.objects.get()
    Stay.objects.filter(pk=ticket.stay_id).update(entered_at=timezone.now() - timedelta(minutes=90))
    site.push("exit", None)
    open_qr(phone, base, site, "exit")
    phone.get_by_label("手机号").fill("13800138000")
    phone.get_by_role("button", name="查找入场凭证").click()
    expect(phone.locator("#due")).to_have_text("¥8.00")
    fits_the_screen(phone)
    pay_through_the_cashier(phone)
    expect(phone.locator("#next")).to_have_text("道闸已打开，一路平安")
    phone.screenshot(path="/tmp/eppark-unplated-paid.png")

    order = Order.objects.get()
    assert (order.kind, order.state, order.amount) == ("unplated", OrderState.PAID, 800)
    assert site.voices("exit")[-1] == "一路平安"
    assert len(site.commands("exit", "open")) == 1


def test_temp_quick_pay_at_the_exit(site: Site, phone: Page, live_server: Any) -> None:
    stay = site.temp_stay("粤B12345", 90)
    site.push("exit", "粤B12345")
    open_qr(phone, live_server.url, site, "exit")
    expect(phone.locator("#due")).to_have_text("¥8.00")
    expect(phone.get_by_text("粤B12345")).to_be_visible()
    phone.screenshot(path="/tmp/eppark-temp-bill.png")
    pay_through_the_cashier(phone)
    expect(phone.locator("#next")).to_have_text("道闸已打开，一路平安")
    stay.refresh_from_db()
    assert stay.exited_at is not None
    assert len(site.commands("exit", "open")) == 1


def test_an_expired_pass_renews_on_the_phone(site: Site, phone: Page, live_server: Any) -> None:
    monthly = site.give_pass("粤B88888", expired_days=5)
    new_end = billing.renewed_until(monthly.valid_until, 1, timezone.get_default_timezone())
    site.push("exit", "粤B88888")
    open_qr(phone, live_server.url, site, "exit")
    expect(phone.get_by_text("李*")).to_be_visible()
    expect(phone.get_by_text("¥300.00")).to_be_visible()
    phone.screenshot(path="/tmp/eppark-renewal.png")
    pay_through_the_cashier(phone)
    expect(phone.locator("#renewed-until")).to_have_text(new_end.strftime("%Y-%m-%d"))
    expect(phone.locator("#next")).to_contain_text("道闸已打开，一路平安")
    monthly.refresh_from_db()
    assert monthly.valid_until == new_end
    assert len(site.commands("exit", "open")) == 1


def test_a_bad_qr_code_gets_a_page_not_an_error(phone: Page, live_server: Any) -> None:
    phone.goto(live_server.url + "/q/not-a-token")
    expect(phone.get_by_text(re.compile("二维码无效"))).to_be_visible()
    phone.screenshot(path="/tmp/eppark-bad-qr.png")
    fits_the_screen(phone)
    assert urlsplit(phone.url).path == "/q/not-a-token"
