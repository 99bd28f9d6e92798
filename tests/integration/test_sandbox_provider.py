"""The sandbox provider behaves like the real services (contracts.md "The sandbox provider").

Real database, the provider's own clock set by the test (no sleeping): payment
codes by their last digit, USERPAYING turning to SUCCESS, an error that
nevertheless charged, the queued (duplicate) notifications, close / reverse /
refund, the day's bill, signed notifications and the checkout service.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from eppark.evidence.links import public_url
from eppark.lots.models import Lot
from eppark.orders.models import Order, OrderState
from eppark.orders.placing import order_for_stay
from eppark.payments import checkout
from eppark.payments.models import SandboxDelivery, SandboxTrade
from eppark.payments.providers import sandbox
from eppark.payments.providers.base import (
    Charge,
    NotificationRejected,
    PagePayment,
    ProviderError,
    Refused,
    TradeState,
)
from eppark.payments.providers.sandbox import Sandbox
from eppark.records.errors import Refused as ActionRefused
from eppark.stays.models import Stay

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
WECHAT_CODE = "13456789012345678"  # + last digit: 18 digits starting 13
ALIPAY_CODE = "2812345678901234"  # + ... : starts 28


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def charge(number: str = "EPT0001AAAA", amount: int = 500, **kw: object) -> Charge:
    fields: dict[str, object] = {
        "out_trade_no": number,
        "amount": amount,
        "description": "彩科彩悦大厦 停车费 粤B12345",
        "expires_at": T0 + timedelta(minutes=10),
        "notify_url": "http://127.0.0.1:9/payments/notify/sandbox/",
    }
    fields.update(kw)
    return Charge(**fields)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def wechat(clock: Clock) -> Sandbox:
    return Sandbox("wechat", clock=clock)


def deliveries(number: str) -> list[SandboxDelivery]:
    return list(SandboxDelivery.objects.filter(trade__out_trade_no=number).order_by("due_at"))


# --- payment codes --------------------------------------------------------------------------


@pytest.mark.parametrize("last", ["0", "4", "5", "6", "7", "8", "9"])
def test_a_code_ending_in_0_or_another_digit_pays_at_once(wechat: Sandbox, last: str) -> None:
    result = wechat.codepay(charge(), WECHAT_CODE + last)
    assert result.state is TradeState.SUCCESS
    assert result.amount == 500
    assert result.transaction_id.startswith("SBX")
    assert result.payer.startswith("sbx_")
    assert WECHAT_CODE not in result.payer
    trade = SandboxTrade.objects.get(out_trade_no="EPT0001AAAA")
    assert (trade.state, trade.paid_at, trade.channel) == ("SUCCESS", T0, "wechat")
    # queued twice: at once and a couple of seconds later (the real services resend)
    queued = deliveries("EPT0001AAAA")
    assert [d.due_at for d in queued] == [T0, T0 + sandbox.DUPLICATE_AFTER]
    body = json.loads(queued[0].body)
    assert body["out_trade_no"] == "EPT0001AAAA"
    assert body["trade_state"] == "SUCCESS"
    assert body["amount"]["total"] == 500
    assert body["amount"]["payer_total"] == 500
    assert body["transaction_id"] == result.transaction_id
    assert body["payer"]["openid"] == result.payer
    assert queued[0].body == queued[1].body


def test_a_code_ending_in_1_waits_for_the_driver_then_pays(wechat: Sandbox, clock: Clock) -> None:
    result = wechat.codepay(charge(), WECHAT_CODE + "1")
    assert result.state is TradeState.USERPAYING
    assert deliveries("EPT0001AAAA") == []
    clock.now = T0 + timedelta(seconds=2)
    assert wechat.query("EPT0001AAAA").state is TradeState.USERPAYING
    clock.now = T0 + timedelta(seconds=10)  # the worker's next query
    paid = wechat.query("EPT0001AAAA")
    assert paid.state is TradeState.SUCCESS
    assert paid.paid_at == T0 + sandbox.USERPAYING_FOR
    assert paid.transaction_id.startswith("SBX")
    assert len(deliveries("EPT0001AAAA")) == 2
    # asking again changes nothing and queues nothing more
    assert wechat.query("EPT0001AAAA").transaction_id == paid.transaction_id
    assert len(deliveries("EPT0001AAAA")) == 2


def test_a_confirmed_userpaying_code_is_notified_without_a_query(wechat: Sandbox) -> None:
    wechat.codepay(charge(), WECHAT_CODE + "1")
    assert sandbox.confirm_due(T0 + timedelta(seconds=1)) == 0
    assert sandbox.confirm_due(T0 + timedelta(seconds=4)) == 1
    assert SandboxTrade.objects.get().state == "SUCCESS"
    assert len(deliveries("EPT0001AAAA")) == 2


def test_a_code_ending_in_2_is_declined(wechat: Sandbox) -> None:
    result = wechat.codepay(charge(), WECHAT_CODE + "2")
    assert result.state is TradeState.PAYERROR
    assert result.detail == "余额不足"
    assert result.transaction_id == ""
    assert wechat.query("EPT0001AAAA").state is TradeState.PAYERROR
    assert deliveries("EPT0001AAAA") == []


def test_a_code_ending_in_3_errors_but_the_money_was_taken(wechat: Sandbox) -> None:
    with pytest.raises(ProviderError):
        wechat.codepay(charge(), WECHAT_CODE + "3")
    found = wechat.query("EPT0001AAAA")  # query after any error: it was charged
    assert found.state is TradeState.SUCCESS
    assert found.amount == 500
    assert len(deliveries("EPT0001AAAA")) == 2


def test_alipay_codes_follow_the_same_digits() -> None:
    alipay = Sandbox("alipay", clock=Clock(T0))
    assert alipay.codepay(charge("EPT0002BBBB"), ALIPAY_CODE + "0").state is TradeState.SUCCESS
    assert alipay.codepay(charge("EPT0003CCCC"), ALIPAY_CODE + "2").detail == "余额不足"
    assert SandboxTrade.objects.get(out_trade_no="EPT0002BBBB").channel == "alipay"


def test_paying_a_paid_trade_again_is_idempotent_and_a_closed_one_is_refused(
    wechat: Sandbox,
) -> None:
    first = wechat.codepay(charge(), WECHAT_CODE + "0")
    again = wechat.codepay(charge(), WECHAT_CODE + "5")
    assert again.state is TradeState.SUCCESS
    assert again.transaction_id == first.transaction_id
    assert len(deliveries("EPT0001AAAA")) == 2  # no second payment, no new notification
    wechat.page_payment(charge("EPT0009ZZZZ"))
    wechat.close("EPT0009ZZZZ")
    with pytest.raises(Refused):
        wechat.codepay(charge("EPT0009ZZZZ"), WECHAT_CODE + "0")


def test_a_page_payment_is_refused_while_a_code_waits_for_the_driver(
    wechat: Sandbox, clock: Clock
) -> None:
    wechat.codepay(charge(), WECHAT_CODE + "1")
    with pytest.raises(Refused, match="USERPAYING"):
        wechat.page_payment(charge())
    clock.now = T0 + timedelta(seconds=5)  # the driver confirmed meanwhile
    with pytest.raises(Refused, match="ORDERPAID"):
        wechat.page_payment(charge())
    assert SandboxTrade.objects.get().state == "SUCCESS"


def test_a_declined_code_may_be_paid_on_the_page_instead(wechat: Sandbox) -> None:
    wechat.codepay(charge(), WECHAT_CODE + "2")
    wechat.page_payment(charge())
    assert SandboxTrade.objects.get().state == "NOTPAY"


def test_bad_charges_are_refused(wechat: Sandbox) -> None:
    with pytest.raises(Refused):
        wechat.codepay(charge(amount=0), WECHAT_CODE + "0")
    with pytest.raises(Refused):
        wechat.codepay(charge(description="长" * 128), WECHAT_CODE + "0")
    with pytest.raises(Refused):
        wechat.codepay(charge(), "not-a-code")
    with pytest.raises(Refused):
        wechat.query("EPTNOSUCHONE")
    assert not SandboxTrade.objects.exists()


# --- close, reverse, refund ---------------------------------------------------------------


def test_close_an_unpaid_trade_but_not_a_paid_one(wechat: Sandbox) -> None:
    wechat.page_payment(charge())
    wechat.close("EPT0001AAAA")
    assert wechat.query("EPT0001AAAA").state is TradeState.CLOSED
    wechat.close("EPT0001AAAA")  # twice: harmless
    wechat.close("EPTNEVERSENT")  # never opened: nothing to close
    wechat.codepay(charge("EPT0002BBBB"), WECHAT_CODE + "0")
    with pytest.raises(Refused):
        wechat.close("EPT0002BBBB")
    assert wechat.query("EPT0002BBBB").state is TradeState.SUCCESS


def test_closing_a_waiting_code_stops_it_paying(wechat: Sandbox, clock: Clock) -> None:
    wechat.codepay(charge(), WECHAT_CODE + "1")
    wechat.close("EPT0001AAAA")
    clock.now = T0 + timedelta(seconds=30)
    assert wechat.query("EPT0001AAAA").state is TradeState.CLOSED
    assert deliveries("EPT0001AAAA") == []


def test_reverse_cancels_a_waiting_code_and_refunds_a_paid_one(
    wechat: Sandbox, clock: Clock
) -> None:
    wechat.codepay(charge(), WECHAT_CODE + "1")
    wechat.reverse("EPT0001AAAA")  # before the driver confirmed
    clock.now = T0 + timedelta(seconds=45)
    reversed_ = wechat.query("EPT0001AAAA")
    assert reversed_.state is TradeState.REVOKED
    assert SandboxTrade.objects.get(out_trade_no="EPT0001AAAA").refunded == 0
    wechat.codepay(charge("EPT0002BBBB"), WECHAT_CODE + "0")
    wechat.reverse("EPT0002BBBB")
    trade = SandboxTrade.objects.get(out_trade_no="EPT0002BBBB")
    assert (trade.state, trade.refunded) == ("REVOKED", 500)
    wechat.reverse("EPT0002BBBB")  # twice: harmless
    with pytest.raises(Refused):
        wechat.codepay(charge("EPT0002BBBB"), WECHAT_CODE + "0")


def test_reverse_after_the_driver_confirmed_refunds(wechat: Sandbox, clock: Clock) -> None:
    wechat.codepay(charge(), WECHAT_CODE + "1")
    clock.now = T0 + timedelta(seconds=45)  # confirmed at 3 s, nobody asked
    wechat.reverse("EPT0001AAAA")
    trade = SandboxTrade.objects.get()
    assert (trade.state, trade.refunded, trade.paid_at) == (
        "REVOKED",
        500,
        T0 + timedelta(seconds=3),
    )


def test_refunds_partial_then_full(wechat: Sandbox) -> None:
    wechat.codepay(charge(amount=800), WECHAT_CODE + "0")
    part = wechat.refund("EPT0001AAAA", "R1", 300, 800, "车主多付")
    assert part.succeeded
    assert part.refund_id.startswith("SBXR")
    assert wechat.query("EPT0001AAAA").state is TradeState.SUCCESS
    # the same refund asked again (a retry) refunds once
    assert wechat.refund("EPT0001AAAA", "R1", 300, 800, "车主多付").refund_id == part.refund_id
    assert SandboxTrade.objects.get().refunded == 300
    with pytest.raises(Refused):
        wechat.refund("EPT0001AAAA", "R2", 600, 800, "too much")
    with pytest.raises(Refused):
        wechat.refund("EPT0001AAAA", "R2", 100, 900, "wrong total")
    with pytest.raises(Refused):
        wechat.refund("EPT0001AAAA", "R1", 100, 800, "number reused")
    wechat.refund("EPT0001AAAA", "R3", 500, 800, "the rest")
    trade = SandboxTrade.objects.get()
    assert (trade.state, trade.refunded) == ("REFUND", 800)
    assert wechat.query("EPT0001AAAA").state is TradeState.REFUND
    with pytest.raises(Refused):
        wechat.refund("EPT0001AAAA", "R4", 1, 800, "nothing left")


def test_an_unpaid_trade_cannot_be_refunded(wechat: Sandbox) -> None:
    wechat.page_payment(charge())
    with pytest.raises(Refused):
        wechat.refund("EPT0001AAAA", "R1", 100, 500, "not paid")


# --- the bill -----------------------------------------------------------------------------


def test_the_bill_lists_the_days_paid_trades_in_shanghai_time(clock: Clock) -> None:
    wechat = Sandbox("wechat", clock=clock)
    alipay = Sandbox("alipay", clock=clock)
    clock.now = datetime(2026, 11, 30, 15, 59, tzinfo=UTC)  # 23:59 on 30 Nov in Shanghai
    wechat.codepay(
        charge("EPT0001LATE", expires_at=clock.now + timedelta(minutes=10)), WECHAT_CODE + "0"
    )
    clock.now = datetime(2026, 11, 30, 16, 1, tzinfo=UTC)  # 00:01 on 1 Dec in Shanghai
    wechat.codepay(charge("EPT0002EARLY", amount=300), WECHAT_CODE + "0")
    wechat.codepay(charge("EPT0003DECL"), WECHAT_CODE + "2")
    wechat.codepay(charge("EPT0004REFD", amount=200), WECHAT_CODE + "0")
    wechat.refund("EPT0004REFD", "R1", 200, 200, "full")
    alipay.codepay(charge("EPT0005ALI"), ALIPAY_CODE + "0")
    wechat.page_payment(charge("EPT0006OPEN"))
    lines = wechat.bill(date(2026, 12, 1))
    assert [(b.out_trade_no, b.amount, b.state) for b in lines] == [
        ("EPT0002EARLY", 300, TradeState.SUCCESS),
        ("EPT0004REFD", 200, TradeState.REFUND),
    ]
    assert [b.out_trade_no for b in wechat.bill(date(2026, 11, 30))] == ["EPT0001LATE"]
    assert [b.out_trade_no for b in alipay.bill(date(2026, 12, 1))] == ["EPT0005ALI"]


# --- page payments ------------------------------------------------------------------------


def test_a_page_payment_opens_the_trade_and_points_at_the_cashier(wechat: Sandbox) -> None:
    page = wechat.page_payment(charge(), return_url="/pay/done/?o=1")
    assert page.kind == "redirect"
    parts = urlsplit(page.url)
    assert page.url.startswith(public_url() + "/sandbox/cashier/")
    assert parse_qs(parts.query)["return"] == ["/pay/done/?o=1"]
    trade = SandboxTrade.objects.get()
    assert (trade.state, trade.amount, trade.expires_at) == (
        "NOTPAY",
        500,
        T0 + timedelta(minutes=10),
    )
    assert trade.notify_url == "http://127.0.0.1:9/payments/notify/sandbox/"
    # opened again with a new amount (the fee was repriced): the same trade, updated
    wechat.page_payment(charge(amount=800), return_url=public_url() + "/pay/done/")
    assert SandboxTrade.objects.get().amount == 800


@pytest.mark.parametrize(
    "bad",
    [
        "https://evil.example/phish",
        "//evil.example/x",
        "javascript:alert(1)",
        "pay/done",
        "/\\evil",
    ],
)
def test_a_return_url_off_this_site_is_refused(wechat: Sandbox, bad: str) -> None:
    with pytest.raises(Refused):
        wechat.page_payment(charge(), return_url=bad)
    assert not SandboxTrade.objects.exists()


def test_the_cashier_pays_once(wechat: Sandbox) -> None:
    wechat.page_payment(charge())
    trade = sandbox.pay_at_cashier("EPT0001AAAA", payer="", now=T0 + timedelta(minutes=1))
    again = sandbox.pay_at_cashier("EPT0001AAAA", payer="", now=T0 + timedelta(minutes=2))
    assert again.transaction_id == trade.transaction_id
    assert again.paid_at == T0 + timedelta(minutes=1)
    assert len(deliveries("EPT0001AAAA")) == 2
    with pytest.raises(Refused):
        wechat.page_payment(charge())  # already paid


def test_the_cashier_refuses_an_expired_or_closed_trade(wechat: Sandbox) -> None:
    wechat.page_payment(charge())
    with pytest.raises(sandbox.CashierClosed):
        sandbox.pay_at_cashier("EPT0001AAAA", payer="", now=T0 + timedelta(minutes=11))
    wechat.close("EPT0001AAAA")
    with pytest.raises(sandbox.CashierClosed):
        sandbox.pay_at_cashier("EPT0001AAAA", payer="", now=T0)
    with pytest.raises(sandbox.CashierClosed):
        sandbox.pay_at_cashier("EPTNOSUCH", payer="", now=T0)
    assert SandboxTrade.objects.get().state == "CLOSED"


# --- notifications ------------------------------------------------------------------------


def signed(body: bytes, at: datetime) -> dict[str, str]:
    return sandbox.signed_headers(body, at)


def test_a_signed_notification_is_read(wechat: Sandbox) -> None:
    wechat.codepay(charge(), WECHAT_CODE + "0")
    body = deliveries("EPT0001AAAA")[0].body.encode()
    headers = {k.lower(): v for k, v in signed(body, T0).items()}  # any header case
    result = wechat.parse_notification(headers, body, T0 + timedelta(minutes=4))
    assert (result.out_trade_no, result.state, result.amount) == (
        "EPT0001AAAA",
        TradeState.SUCCESS,
        500,
    )
    assert result.paid_at == T0
    assert result.transaction_id.startswith("SBX")


def test_notifications_that_must_not_be_believed(wechat: Sandbox) -> None:
    wechat.codepay(charge(), WECHAT_CODE + "0")
    body = deliveries("EPT0001AAAA")[0].body.encode()
    good = signed(body, T0)

    def refused(headers: dict[str, str], payload: bytes = body, now: datetime = T0) -> str:
        with pytest.raises(NotificationRejected) as caught:
            wechat.parse_notification(headers, payload, now)
        return str(caught.value)

    assert "missing" in refused({})
    assert "signature" in refused({**good, sandbox.HEADER_SIGNATURE: "AAAA"})
    tampered = body.replace(b'"total":500', b'"total":1')
    assert "signature" in refused(good, tampered)
    assert "signature" in refused({**good, sandbox.HEADER_NONCE: "other"})
    assert "stale" in refused(good, now=T0 + timedelta(minutes=5, seconds=1))
    assert "future" in refused(good, now=T0 - timedelta(minutes=5, seconds=1))
    assert "timestamp" in refused({**good, sandbox.HEADER_TIMESTAMP: "soon"})
    for bad in (b"{not json", b"[]", b'{"trade_state":"SUCCESS"}', b"\xff\xfe"):
        assert "malformed" in refused(signed(bad, T0), bad)
    no_amount = json.dumps({"out_trade_no": "EPT0001AAAA", "trade_state": "SUCCESS"}).encode()
    assert "amount" in refused(signed(no_amount, T0), no_amount)
    odd_state = json.dumps(
        {"out_trade_no": "X", "trade_state": "PAID", "amount": {"total": 1}}
    ).encode()
    assert "trade_state" in refused(signed(odd_state, T0), odd_state)


def test_the_signing_key_comes_from_the_secret_key(wechat: Sandbox, settings: object) -> None:
    body = b'{"out_trade_no":"EPT0001AAAA","trade_state":"SUCCESS","amount":{"total":500}}'
    headers = signed(body, T0)
    settings.SECRET_KEY = "another-secret-key-of-another-server-0123456789abcdef"  # type: ignore[attr-defined]
    with pytest.raises(NotificationRejected):
        wechat.parse_notification(headers, body, T0)


def test_replies_follow_wechat_v3() -> None:
    provider = Sandbox("wechat")
    assert provider.notification_reply(True).status == 204
    failed = provider.notification_reply(False)
    assert failed.status == 400
    assert json.loads(failed.body)["code"] == "FAIL"


# --- the checkout service -----------------------------------------------------------------


@pytest.fixture
def order(settings: object) -> Order:
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


class Down(Sandbox):
    """A sandbox whose service cannot be reached (a provider down)."""

    def page_payment(self, *args: object, **kw: object) -> PagePayment:
        raise ProviderError("connection refused")


def test_start_page_payment_sends_the_order_to_the_cashier(order: Order) -> None:
    provider = Sandbox("alipay")
    page = checkout.start_page_payment(
        order, provider, payer="", return_url="/q/abc/result", now=timezone.now()
    )
    assert "/sandbox/cashier/" in page.url
    assert order.state == "paying"  # the caller's copy too
    order.refresh_from_db()
    assert (order.state, order.provider, order.channel) == ("paying", "sandbox", "alipay")
    trade = SandboxTrade.objects.get()
    assert trade.description == "彩科彩悦大厦 停车费 粤B12345"
    assert trade.notify_url == public_url() + "/payments/notify/sandbox/"
    assert trade.expires_at == order.expires_at
    assert trade.amount == order.amount == 500


def test_start_page_payment_refuses_what_cannot_be_paid(order: Order) -> None:
    provider = Sandbox("wechat")
    later = (order.expires_at or timezone.now()) + timedelta(seconds=1)
    with pytest.raises(ActionRefused, match=r"expired|过期"):
        checkout.start_page_payment(order, provider, return_url="/x", now=later)
    Order.objects.filter(pk=order.pk).update(state=OrderState.CLOSED)
    with pytest.raises(ActionRefused):
        checkout.start_page_payment(order, provider, return_url="/x", now=timezone.now())
    assert not SandboxTrade.objects.exists()


def test_a_provider_down_leaves_the_order_unchanged(order: Order) -> None:
    with pytest.raises(checkout.PaymentUnavailable) as caught:
        checkout.start_page_payment(order, Down("wechat"), return_url="/x", now=timezone.now())
    assert caught.value.message  # the page shows it
    order.refresh_from_db()
    assert (order.state, order.provider) == ("created", "")


def test_confirm_by_query_settles_a_paid_order(order: Order) -> None:
    now = timezone.now()
    provider = Sandbox("wechat")
    checkout.start_page_payment(order, provider, return_url="/x", now=now)
    assert checkout.confirm_by_query(order, now) is None  # not paid yet
    sandbox.pay_at_cashier(order.out_trade_no, payer="", now=now)
    settled = checkout.confirm_by_query(order, now)
    assert settled is not None
    assert settled.verdict == "pays"
    order.refresh_from_db()
    assert (order.state, order.paid_amount) == ("paid", 500)
    assert order.transaction_id.startswith("SBX")
    assert checkout.confirm_by_query(order, now) is None  # paid: nothing more to ask


def test_close_order_closes_at_the_provider_then_ours(order: Order) -> None:
    now = timezone.now()
    checkout.start_page_payment(order, Sandbox("wechat"), return_url="/x", now=now)
    assert checkout.close_order(order, now) is True
    order.refresh_from_db()
    assert order.state == "closed"
    assert SandboxTrade.objects.get().state == "CLOSED"


def test_close_order_settles_a_trade_that_was_paid_after_all(order: Order) -> None:
    now = timezone.now()
    checkout.start_page_payment(order, Sandbox("wechat"), return_url="/x", now=now)
    sandbox.pay_at_cashier(order.out_trade_no, payer="", now=now)
    assert checkout.close_order(order, now) is False
    order.refresh_from_db()
    assert order.state == "paid"
