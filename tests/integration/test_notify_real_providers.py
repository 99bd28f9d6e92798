"""The notification endpoint with the real adapters: WeChat Pay and Alipay stand-ins post to it.

WeChat Pay and Alipay are configured from the environment with keys made up
here (so the sandbox is off); their local stand-ins (``eppark.sim``) take the
page payment, the driver pays there, and they post their own signed
notifications — twice — to ``/payments/notify/wechat/`` and
``/payments/notify/alipay/`` on pytest-django's live server. Each pays the
order once and is answered in the provider's own words (204 / ``success``);
forged, stale and wrong-amount notifications are answered and recorded as
``notify.py`` documents.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from eppark.lots.models import Lot
from eppark.orders.models import Order
from eppark.orders.placing import order_for_stay
from eppark.payments import checkout, providers
from eppark.payments.models import Notification
from eppark.sim import wechatpay as wechatpay_sim
from eppark.sim.alipay import AlipayStandIn, new_rsa_key, private_pem, public_pem
from eppark.stays.models import Stay

pytestmark = pytest.mark.django_db(transaction=True)

ALIPAY_APP_ID = "2021000123456789"
ALIPAY_SELLER_ID = "2088101106499364"
RETURN = "/q/some-token/result"


@dataclass
class Rig:
    url: str
    wechat: wechatpay_sim.WechatPaySim
    alipay: AlipayStandIn
    order: Order

    def reload(self) -> Order:
        return Order.objects.get(pk=self.order.pk)


@pytest.fixture
def rig(
    live_server: Any, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Rig]:
    settings.EPPARK_PUBLIC_URL = live_server.url
    monkeypatch.setitem(connections.settings[DEFAULT_DB_ALIAS], "CONN_MAX_AGE", 0)
    wechat_keys = wechatpay_sim.generate_keys()
    wechat = wechatpay_sim.WechatPaySim(wechat_keys)
    app_key = new_rsa_key()
    alipay = AlipayStandIn(
        app_id=ALIPAY_APP_ID, app_public_key=app_key.public_key(), seller_id=ALIPAY_SELLER_ID
    )
    wechat.start()
    alipay.start()
    try:
        env = wechatpay_sim.write_environ(wechat_keys, tmp_path / "wechatpay", wechat.base_url)
        (tmp_path / "app.pem").write_text(private_pem(app_key))
        (tmp_path / "alipay.pem").write_text(public_pem(alipay.alipay_key))
        env.update(
            EPPARK_ALIPAY_APP_ID=ALIPAY_APP_ID,
            EPPARK_ALIPAY_PRIVATE_KEY_FILE=str(tmp_path / "app.pem"),
            EPPARK_ALIPAY_PUBLIC_KEY_FILE=str(tmp_path / "alipay.pem"),
            EPPARK_ALIPAY_SELLER_ID=ALIPAY_SELLER_ID,
            EPPARK_ALIPAY_GATEWAY=alipay.gateway,
        )
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        providers.configured.cache_clear()
        assert not providers.sandbox_on()
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
        order = order_for_stay(stay, now)
        assert order is not None
        yield Rig(live_server.url, wechat, alipay, order)
    finally:
        providers.configured.cache_clear()
        alipay.stop()
        wechat.stop()


def verdicts() -> list[str]:
    return [n.verdict for n in Notification.objects.order_by("pk")]


def test_a_wechat_pay_notification_pays_once(rig: Rig) -> None:
    provider = providers.for_channel("wechat")
    checkout.start_page_payment(rig.order, provider, return_url=RETURN, now=timezone.now())
    assert rig.reload().state == "paying"
    rig.wechat.pay(rig.order.out_trade_no)
    assert rig.wechat.notify(rig.order.out_trade_no, times=2) == [204, 204]
    order = rig.reload()
    assert (order.state, order.provider, order.channel, order.paid_amount) == (
        "paid",
        "wechat",
        "wechat",
        500,
    )
    assert verdicts() == ["pays", "duplicate"]
    assert Notification.objects.filter(provider="wechat", order=order).count() == 2


def test_wechat_pay_probes_and_stale_notifications_are_refused(rig: Rig) -> None:
    provider = providers.for_channel("wechat")
    checkout.start_page_payment(rig.order, provider, return_url=RETURN, now=timezone.now())
    rig.wechat.pay(rig.order.out_trade_no)
    url = f"{rig.url}/payments/notify/wechat/"
    with httpx.Client(timeout=10, trust_env=False) as http:
        headers, body = rig.wechat.build_notification(
            rig.order.out_trade_no, signature="WECHATPAY/SIGNTEST/" + "A" * 100
        )
        probe = http.post(url, content=body, headers=headers)
        assert probe.status_code == 500  # WeChat Pay's "failed": it sends again
        assert probe.json()["code"] == "FAIL"
        headers, body = rig.wechat.build_notification(
            rig.order.out_trade_no, timestamp=int(time.time()) - 600
        )
        assert http.post(url, content=body, headers=headers).status_code == 500
    assert rig.reload().state == "paying"
    assert verdicts() == ["rejected", "rejected"]


def test_an_alipay_notification_pays_once(rig: Rig) -> None:
    provider = providers.for_channel("alipay")
    checkout.start_page_payment(rig.order, provider, return_url=RETURN, now=timezone.now())
    rig.alipay.pay_qr(rig.order.out_trade_no)
    answers = rig.alipay.notify(rig.order.out_trade_no, twice=True)
    assert answers == [(200, b"success"), (200, b"success")]
    order = rig.reload()
    assert (order.state, order.provider, order.channel, order.paid_amount) == (
        "paid",
        "alipay",
        "alipay",
        500,
    )
    assert verdicts() == ["pays", "duplicate"]


def test_alipay_forged_and_wrong_amount_notifications(rig: Rig) -> None:
    provider = providers.for_channel("alipay")
    checkout.start_page_payment(rig.order, provider, return_url=RETURN, now=timezone.now())
    rig.alipay.pay_qr(rig.order.out_trade_no)
    url = f"{rig.url}/payments/notify/alipay/"
    form_type = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    with httpx.Client(timeout=10, trust_env=False) as http:
        forged = rig.alipay.notification_form(rig.order.out_trade_no)
        forged["total_amount"] = "0.01"  # changed after Alipay signed it
        answer = http.post(url, content=urlencode(forged).encode(), headers=form_type)
        assert (answer.status_code, answer.content) == (200, b"fail")
        assert rig.reload().state == "paying"
        wrong = rig.alipay.notification_form(rig.order.out_trade_no, total_amount="0.01")
        answer = http.post(url, content=urlencode(wrong).encode(), headers=form_type)
        assert (answer.status_code, answer.content) == (200, b"success")  # believed: ours to review
    order = rig.reload()
    assert order.state == "paying"
    assert order.needs_review
    assert verdicts() == ["rejected", "mismatch"]


def test_checkout_when_wechat_pay_is_down(rig: Rig) -> None:
    provider = providers.for_channel("wechat")
    rig.wechat.go_down("503")
    with pytest.raises(checkout.PaymentUnavailable):
        checkout.start_page_payment(rig.order, provider, return_url=RETURN, now=timezone.now())
    assert (rig.reload().state, rig.reload().provider) == ("created", "")
    rig.wechat.come_back()
    checkout.start_page_payment(rig.order, provider, return_url=RETURN, now=timezone.now())
    rig.wechat.go_down("refuse")
    assert checkout.confirm_by_query(rig.order, timezone.now()) is None
    assert checkout.close_order(rig.order, timezone.now()) is False  # unknown: try later
    assert rig.reload().state == "paying"
    rig.wechat.come_back()
    assert checkout.close_order(rig.order, timezone.now()) is True
    assert rig.reload().state == "closed"
    assert rig.wechat.trades[rig.order.out_trade_no].state == "CLOSED"


def test_the_result_page_query_settles_before_the_notification(rig: Rig) -> None:
    provider = providers.for_channel("wechat")
    checkout.start_page_payment(rig.order, provider, return_url=RETURN, now=timezone.now())
    rig.wechat.pay(rig.order.out_trade_no)
    settled = checkout.confirm_by_query(rig.order, timezone.now())
    assert settled is not None
    assert settled.verdict == "pays"
    assert rig.reload().state == "paid"
    assert rig.wechat.notify(rig.order.out_trade_no) == [204]  # arrives later: a duplicate
    assert verdicts() == ["duplicate"]
