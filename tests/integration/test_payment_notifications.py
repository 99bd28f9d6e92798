"""Payment notifications end to end over real HTTP, and the sandbox's cashier page.

pytest-django's live server runs the project; the sandbox's own ``deliver_due``
POSTs its signed notifications to it, and the attacks are POSTed with httpx:
a bad signature, a stale timestamp, a wrong amount, an unknown order, a replay
(fresh: a duplicate; older than 5 minutes: refused), an oversized body. The
cashier page is driven the way a phone does (GET, then a form POST with the
CSRF cookie): confirm pays once and returns to our page, cancel leaves the
trade unpaid, a forged token or a closed or expired trade gets a clear page.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from eppark.devices.models import Command
from eppark.lots.models import Lot
from eppark.orders.models import Order
from eppark.orders.placing import order_for_stay
from eppark.payments import checkout, providers
from eppark.payments.delivery import BACKOFF, deliver_due
from eppark.payments.models import Notification, SandboxDelivery, SandboxTrade
from eppark.payments.providers import sandbox
from eppark.payments.providers.base import ProviderError
from eppark.payments.providers.sandbox import Sandbox
from eppark.sim import wechatpay as wechatpay_sim
from eppark.stays.models import GateVisit, Stay
from tests.integration.test_gate_loop import Site, opened

pytestmark = pytest.mark.django_db(transaction=True)

TARIFF = {
    "free_minutes": 0,
    "first": {"minutes": 60, "price": 500},
    "unit": {"minutes": 60, "price": 300},
}
RETURN = "/q/some-token/result"


@dataclass
class World:
    url: str  # the live server
    order: Order
    provider: Sandbox
    http: httpx.Client

    @property
    def notify(self) -> str:
        return f"{self.url}/payments/notify/sandbox/"

    def reload(self) -> Order:
        return Order.objects.get(pk=self.order.pk)

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.http.post(self.notify, content=body, headers=headers)


@pytest.fixture
def world(live_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    settings.EPPARK_PUBLIC_URL = live_server.url
    # the live server answers in threads of its own: no idle connection kept open
    monkeypatch.setitem(connections.settings[DEFAULT_DB_ALIAS], "CONN_MAX_AGE", 0)
    lot = Lot.objects.create(code="ckcy", name="彩科彩悦大厦", capacity=10, tariff=TARIFF)
    now = timezone.now()
    stay = Stay.objects.create(
        lot=lot, plate="粤B12345", entered_as="temp", entered_at=now - timedelta(minutes=30)
    )
    order = order_for_stay(stay, now)
    assert order is not None
    with httpx.Client(timeout=10, trust_env=False) as http:
        yield World(live_server.url, order, Sandbox("wechat"), http)


def start(world: World) -> str:
    """The order sent to the sandbox's cashier; the cashier page's URL."""
    page = checkout.start_page_payment(
        world.order, world.provider, return_url=RETURN, now=timezone.now()
    )
    return page.url


def paid_at_cashier(world: World) -> None:
    start(world)
    sandbox.pay_at_cashier(world.order.out_trade_no, payer="", now=timezone.now())


def notifications() -> list[tuple[str, str]]:
    return [(n.verdict, n.out_trade_no) for n in Notification.objects.order_by("pk")]


def body_for(order: Order, **changes: Any) -> bytes:
    payload: dict[str, Any] = {
        "out_trade_no": order.out_trade_no,
        "transaction_id": "SBX20261201000000ATTACK",
        "trade_state": "SUCCESS",
        "success_time": timezone.now().isoformat(timespec="seconds"),
        "amount": {"total": order.amount, "payer_total": order.amount},
        "payer": {"openid": "sbx_attacker"},
    }
    payload.update(changes)
    return json.dumps(payload).encode()


# --- the sandbox's notifications arrive and settle once -----------------------------------


def test_a_payment_notification_settles_the_order_once(world: World) -> None:
    paid_at_cashier(world)
    now = timezone.now()
    assert deliver_due(now) == 1  # the first copy; the duplicate is due a little later
    order = world.reload()
    assert order.state == "paid"
    assert order.paid_amount == order.amount == 500
    assert order.transaction_id.startswith("SBX")
    first_paid_at = order.paid_at
    assert notifications() == [("pays", order.out_trade_no)]
    row = Notification.objects.get()
    assert (row.provider, row.amount, row.order_id, row.lot_id) == (
        "sandbox",
        500,
        order.pk,
        order.lot_id,
    )

    assert deliver_due(now + timedelta(seconds=3)) == 1  # the duplicate
    order = world.reload()
    assert (order.state, order.paid_at, order.needs_review) == ("paid", first_paid_at, False)
    assert notifications() == [("pays", order.out_trade_no), ("duplicate", order.out_trade_no)]
    assert not SandboxDelivery.objects.filter(delivered_at__isnull=True).exists()
    assert deliver_due(now + timedelta(minutes=1)) == 0  # nothing left to send


def test_a_waiting_payment_code_is_notified_once_the_driver_confirms(world: World) -> None:
    order = world.order
    charge = checkout.charge_for(order, world.provider)
    assert world.provider.codepay(charge, "134567890123456781").state == "USERPAYING"
    now = timezone.now()
    assert deliver_due(now) == 0  # the driver has not confirmed yet
    assert world.reload().state == "created"
    assert deliver_due(now + timedelta(seconds=4)) == 1  # confirmed at 3 s, nobody queried
    assert world.reload().state == "paid"


def test_an_error_that_nevertheless_charged_is_settled_by_its_notification(world: World) -> None:
    charge = checkout.charge_for(world.order, world.provider)
    with pytest.raises(ProviderError):
        world.provider.codepay(charge, "134567890123456783")
    assert deliver_due(timezone.now()) == 1
    assert world.reload().state == "paid"


def test_a_notification_that_is_not_answered_ok_is_sent_again_later(world: World) -> None:
    trade = SandboxTrade.objects.create(
        out_trade_no="EPT0000LOST",
        channel="wechat",
        amount=100,
        created_at=timezone.now(),
        notify_url=f"{world.url}/payments/notify/nosuch/",  # answers 404
    )
    now = timezone.now()
    sandbox.pay_at_cashier(trade.out_trade_no, payer="", now=now)
    assert deliver_due(now) == 0
    first = SandboxDelivery.objects.filter(trade=trade).order_by("pk").first()
    assert first is not None
    assert first.attempts == 1
    assert first.delivered_at is None
    assert first.due_at == now + BACKOFF[0]
    assert "404" in first.last_error
    # an unreachable server is retried the same way
    SandboxDelivery.objects.filter(trade=trade).update(url="http://127.0.0.1:9/unreachable")
    assert deliver_due(now + timedelta(minutes=1)) == 0
    first.refresh_from_db()
    assert first.attempts == 2
    assert first.due_at == now + timedelta(minutes=1) + BACKOFF[1]


# --- attacks ------------------------------------------------------------------------------


def test_a_bad_signature_is_refused_and_changes_nothing(world: World) -> None:
    start(world)
    body = body_for(world.order)
    headers = sandbox.signed_headers(body, timezone.now())
    headers[sandbox.HEADER_SIGNATURE] = sandbox.signed_headers(b"other", timezone.now())[
        sandbox.HEADER_SIGNATURE
    ]
    answer = world.post(body, headers)
    assert answer.status_code == 400
    assert answer.json()["code"] == "FAIL"
    unsigned = world.post(body, {"Content-Type": "application/json"})
    assert unsigned.status_code == 400
    assert world.reload().state == "paying"
    assert [v for v, _ in notifications()] == ["rejected", "rejected"]
    assert "signature" in Notification.objects.order_by("pk").first().detail  # type: ignore[union-attr]


def test_a_stale_timestamp_is_refused(world: World) -> None:
    start(world)
    body = body_for(world.order)
    stale = sandbox.signed_headers(body, timezone.now() - timedelta(minutes=6))
    assert world.post(body, stale).status_code == 400
    future = sandbox.signed_headers(body, timezone.now() + timedelta(minutes=6))
    assert world.post(body, future).status_code == 400
    assert world.reload().state == "paying"
    details = [n.detail for n in Notification.objects.order_by("pk")]
    assert "stale" in details[0]
    assert "future" in details[1]


def test_a_wrong_amount_is_flagged_for_review_and_not_paid(world: World) -> None:
    start(world)
    body = body_for(world.order, amount={"total": 1, "payer_total": 1})
    answer = world.post(body, sandbox.signed_headers(body, timezone.now()))
    assert answer.status_code == 204  # believed and recorded: the provider stops resending
    order = world.reload()
    assert order.state == "paying"
    assert order.paid_at is None
    assert order.needs_review
    assert "1 fen" in order.review_note
    row = Notification.objects.get()
    assert (row.verdict, row.amount, row.order_id) == ("mismatch", 1, order.pk)


def test_an_unknown_order_is_recorded_and_nothing_else(world: World) -> None:
    start(world)
    body = body_for(world.order, out_trade_no="EPT9999NOSUCH")
    assert world.post(body, sandbox.signed_headers(body, timezone.now())).status_code == 204
    assert notifications() == [("unknown_order", "EPT9999NOSUCH")]
    assert Notification.objects.get().order is None
    assert world.reload().state == "paying"


def test_a_replayed_notification(world: World) -> None:
    paid_at_cashier(world)
    now = timezone.now()
    assert deliver_due(now) == 1
    captured = SandboxDelivery.objects.filter(delivered_at__isnull=False).get()
    body, headers = captured.body.encode(), dict(captured.headers)
    paid = world.reload()
    # replayed within the 5 minutes: a duplicate, nothing changes
    assert world.post(body, headers).status_code == 204
    # the same notification captured more than 5 minutes ago: refused
    old = sandbox.signed_headers(body, now - timedelta(minutes=5, seconds=30))
    assert world.post(body, old).status_code == 400
    after = world.reload()
    assert (after.state, after.paid_at, after.transaction_id, after.needs_review) == (
        "paid",
        paid.paid_at,
        paid.transaction_id,
        False,
    )
    assert [v for v, _ in notifications()] == ["pays", "duplicate", "rejected"]


def test_a_second_different_payment_of_a_paid_order_is_flagged(world: World) -> None:
    paid_at_cashier(world)
    deliver_due(timezone.now())
    body = body_for(world.order, transaction_id="SBXANOTHERPAYMENT")
    assert world.post(body, sandbox.signed_headers(body, timezone.now())).status_code == 204
    order = world.reload()
    assert order.state == "paid"
    assert order.needs_review
    assert order.transaction_id != "SBXANOTHERPAYMENT"


def test_an_oversized_body_is_refused(world: World) -> None:
    start(world)
    body = body_for(world.order, attach="x" * (64 * 1024))
    answer = world.post(body, sandbox.signed_headers(body, timezone.now()))
    assert answer.status_code == 413
    assert notifications() == [("rejected", "")]
    assert world.reload().state == "paying"


def test_malformed_requests(world: World) -> None:
    start(world)
    junk = b"<xml>not json</xml>"
    assert world.post(junk, sandbox.signed_headers(junk, timezone.now())).status_code == 400
    assert world.http.post(f"{world.url}/payments/notify/paypal/", content=b"{}").status_code == 404
    assert world.http.get(world.notify).status_code == 405
    assert world.reload().state == "paying"
    assert [v for v, _ in notifications()] == ["rejected"]


# --- the cashier page, as a phone uses it -------------------------------------------------


def form_token(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def press(world: World, url: str, action: str) -> httpx.Response:
    page = world.http.get(url)
    assert page.status_code == 200
    data = {
        "csrfmiddlewaretoken": form_token(page.text),
        "action": action,
        "return": RETURN,
    }
    return world.http.post(url.split("?")[0], data=data, headers={"Referer": url})


def test_the_cashier_shows_the_amount_and_its_two_buttons(world: World) -> None:
    url = start(world)
    assert url.startswith(world.url + "/sandbox/cashier/")
    page = world.http.get(url)
    assert page.status_code == 200
    assert "¥5.00" in page.text
    assert "彩科彩悦大厦 停车费 粤B12345" in page.text
    assert ">确认支付</button>" in page.text
    assert ">取消支付</button>" in page.text
    assert page.headers["Cache-Control"].startswith("max-age=0")


def test_confirm_pays_and_returns_to_our_page(world: World) -> None:
    url = start(world)
    answer = press(world, url, "confirm")
    assert answer.status_code == 302
    assert answer.headers["Location"] == RETURN
    trade = SandboxTrade.objects.get()
    assert trade.state == "SUCCESS"
    assert trade.transaction_id.startswith("SBX")
    assert SandboxDelivery.objects.count() == 2  # the notification, and its duplicate
    # the result page asks the provider: paid before any notification arrived
    settled = checkout.confirm_by_query(world.order, timezone.now())
    assert settled is not None
    assert world.reload().state == "paid"
    # confirming again (a double tap, the back button) pays nothing twice
    again = world.http.post(
        url.split("?")[0],
        data={"csrfmiddlewaretoken": world.http.cookies["csrftoken"], "action": "confirm"},
        headers={"Referer": url},
    )
    assert again.status_code == 200
    assert "支付成功" in again.text
    assert SandboxTrade.objects.get().transaction_id == trade.transaction_id
    assert SandboxDelivery.objects.count() == 2
    reopened = world.http.get(url)
    assert "已支付" in reopened.text


def test_cancel_returns_and_leaves_the_trade_unpaid(world: World) -> None:
    url = start(world)
    answer = press(world, url, "cancel")
    assert answer.status_code == 302
    assert answer.headers["Location"] == RETURN
    assert SandboxTrade.objects.get().state == "NOTPAY"
    assert not SandboxDelivery.objects.exists()
    assert world.reload().state == "paying"


def test_a_forged_or_foreign_link_gets_a_clear_page(world: World) -> None:
    url = start(world)
    forged = url.replace("/cashier/", "/cashier/x")
    page = world.http.get(forged)
    assert page.status_code == 400
    assert "支付链接无效" in page.text
    assert "Traceback" not in page.text
    evil = url.split("?")[0] + "?return=https://evil.example/"
    answer = press(world, evil, "cancel")
    assert answer.status_code == 302
    assert answer.headers["Location"] == RETURN  # the form's own field; never evil.example
    page = world.http.get(evil)
    assert "evil.example" not in page.text


def test_a_closed_or_expired_trade_gets_a_clear_page(world: World) -> None:
    url = start(world)
    token = form_token(world.http.get(url).text)  # the page a driver left open
    SandboxTrade.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    page = world.http.get(url)
    assert page.status_code == 410
    assert "已过期" in page.text
    assert "确认支付" not in page.text
    late = world.http.post(
        url.split("?")[0],
        data={"csrfmiddlewaretoken": token, "action": "confirm"},
        headers={"Referer": url},
    )
    assert late.status_code == 410
    assert SandboxTrade.objects.get().state == "NOTPAY"
    SandboxTrade.objects.update(expires_at=timezone.now() + timedelta(minutes=5))
    world.provider.close(world.order.out_trade_no)
    page = world.http.get(url)
    assert page.status_code == 410
    assert "已关闭" in page.text
    # confirming a closed trade (the page left open) pays nothing
    answer = world.http.post(
        url.split("?")[0],
        data={"csrfmiddlewaretoken": token, "action": "confirm"},
        headers={"Referer": url},
    )
    assert answer.status_code == 410
    assert "已关闭" in answer.text
    assert SandboxTrade.objects.get().state == "CLOSED"
    assert not SandboxDelivery.objects.exists()


def test_an_unknown_trade_gets_a_clear_page(world: World) -> None:
    token = sandbox.cashier_token("EPT0000GONE", "wechat")
    page = world.http.get(f"{world.url}/sandbox/cashier/{token}/")
    assert page.status_code == 404
    assert "查无此笔支付" in page.text


# --- with a real provider configured the sandbox is off -----------------------------------


@pytest.fixture
def wechat_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """WeChat Pay configured from the environment (keys made up here); the registry re-read."""
    env = wechatpay_sim.write_environ(
        wechatpay_sim.generate_keys(), tmp_path / "wechatpay", "http://127.0.0.1:9"
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    providers.configured.cache_clear()
    try:
        yield
    finally:
        providers.configured.cache_clear()


def test_the_sandbox_is_off_once_a_real_provider_is_configured(
    world: World, wechat_configured: None
) -> None:
    assert not providers.sandbox_on()
    token = sandbox.cashier_token(world.order.out_trade_no, "wechat")
    assert world.http.get(f"{world.url}/sandbox/cashier/{token}/").status_code == 404
    body = body_for(world.order)
    assert world.post(body, sandbox.signed_headers(body, timezone.now())).status_code == 404
    assert world.reload().state == "created"
    assert not Notification.objects.exists()


# --- the whole way: a car waiting at the exit pays at the cashier and the gate opens -------


def test_a_car_waiting_at_the_exit_pays_at_the_cashier_and_the_gate_opens(
    live_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.EPPARK_PUBLIC_URL = live_server.url
    monkeypatch.setitem(connections.settings[DEFAULT_DB_ALIAS], "CONN_MAX_AGE", 0)
    site = Site(confirm=False)
    stay = Stay.objects.create(
        lot=site.lot,
        plate="粤B88888",
        entered_as="temp",
        entered_at=timezone.now() - timedelta(hours=2.5),
        entry_gate=site.gates["entry"],
    )
    assert not opened(site.push("exit", "粤B88888"))  # the robot asks for the fee
    visit = GateVisit.objects.get(scenario="exit.temp_unpaid")
    order = order_for_stay(stay, timezone.now(), visit=visit)
    assert order is not None
    page = checkout.start_page_payment(
        order, Sandbox("wechat"), return_url=RETURN, now=timezone.now()
    )
    with httpx.Client(timeout=10, trust_env=False) as http:
        cashier = http.get(page.url)
        assert f"¥{order.amount / 100:.2f}" in cashier.text
        confirmed = http.post(
            page.url.split("?")[0],
            data={
                "csrfmiddlewaretoken": form_token(cashier.text),
                "action": "confirm",
                "return": RETURN,
            },
            headers={"Referer": page.url},
        )
    assert confirmed.status_code == 302
    before = Command.objects.count()
    now = timezone.now()
    assert deliver_due(now) == 1  # the notification over HTTP: paid, the gate opens
    new = list(Command.objects.order_by("pk"))[before:]
    assert [c.args["voice"] for c in new if c.cmd == "present"] == ["一路平安"]
    assert [c.cmd for c in new if c.cmd == "open"] == ["open"]
    order.refresh_from_db()
    assert order.state == "paid"
    visit.refresh_from_db()
    assert visit.opened
    count = Command.objects.count()
    assert deliver_due(now + timedelta(seconds=3)) == 1  # the duplicate opens nothing more
    assert Command.objects.count() == count
    assert [n.verdict for n in Notification.objects.order_by("pk")] == ["pays", "duplicate"]


def test_copies_arriving_at_the_same_moment_pay_once(world: World) -> None:
    paid_at_cashier(world)
    delivery = SandboxDelivery.objects.order_by("pk").first()
    assert delivery is not None
    body = delivery.body.encode()
    answers: list[int] = []
    start_together = threading.Barrier(4)

    def send() -> None:
        with httpx.Client(timeout=10, trust_env=False) as http:
            headers = sandbox.signed_headers(body, timezone.now())
            start_together.wait()
            answers.append(http.post(world.notify, content=body, headers=headers).status_code)

    senders = [threading.Thread(target=send) for _ in range(4)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    assert answers == [204] * 4
    verdicts = sorted(v for v, _ in notifications())
    assert verdicts == ["duplicate", "duplicate", "duplicate", "pays"]
    order = world.reload()
    assert order.state == "paid"
    assert not order.needs_review
