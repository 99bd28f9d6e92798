"""The drivers' pages over HTTP: every QR flow from the robot's code to the gate opening.

Visits come from the real gate loop (a plate camera's push to the device endpoint),
the QR URL from the robot's ``present`` command in the outbox, payments go through
the sandbox's own cashier page (``确认支付``), and the gate's ``open`` command is
read back from the outbox.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core import signing
from django.test import Client
from django.utils import timezone

from eppark.devices.models import Command
from eppark.domain import billing
from eppark.lots.models import Gate, Lot
from eppark.orders.models import Order, OrderState
from eppark.passes.models import MonthlyPass, PassPlate
from eppark.payments import providers
from eppark.payments.identity import DRIVER_COOKIE
from eppark.provisioning.apply import apply_plan
from eppark.provisioning.schema import parse_plan
from eppark.sim.cameras import build_push
from eppark.stays.models import EnteredAs, GateVisit, Stay, UnplatedTicket
from eppark.stays.present import qr_url
from eppark.stays.qr_pages import QR_MAX_AGE_S
from tests.integration.factories import TARIFF, keyed_camera

pytestmark = pytest.mark.django_db

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Mobile/15E148"
)
WECHAT = IPHONE + " MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"


class Site:
    """A lot with an entry and an exit gate, each with a robot (which opens it) and a camera."""

    def __init__(self, *, monthly_price: int = 30000) -> None:
        self.lot = Lot.objects.create(
            code="caike",
            name="彩科彩悦大厦",
            capacity=100,
            tariff=TARIFF,
            temp_entry_confirmation=False,
            monthly_price=monthly_price,
        )
        self.gates: dict[str, Gate] = {}
        self.robots: dict[str, Any] = {}
        self.cameras: dict[str, Any] = {}
        from eppark.devices.models import Robot

        for direction, name in (("entry", "入口1"), ("exit", "出口1")):
            gate = Gate.objects.create(
                lot=self.lot,
                code=f"{direction}-1",
                name=name,
                direction=direction,
                opening_channel="robot",
            )
            self.gates[direction] = gate
            self.robots[direction] = Robot.objects.create(
                code=f"EP-{direction}", name=name, lot=self.lot, gate=gate
            )
            self.cameras[direction] = keyed_camera(
                f"k-{direction}",
                vendor="vzenith",
                lot=self.lot,
                gate=gate,
                robot=self.robots[direction],
                serial=f"sn-{direction}",
            )
        self.device = Client()
        self.plate_id = 1000

    def push(self, direction: str, plate: str | None) -> GateVisit:
        """A live read at the gate; the visit it made."""
        camera = self.cameras[direction]
        self.plate_id += 1
        message = build_push(
            "vzenith", camera.serial, plate, timezone.now(), plate_id=self.plate_id
        )
        response = self.device.post(
            f"/devices/lpr/vzenith/{camera.key}",
            data=message.body,
            content_type=message.content_type,
        )
        assert response.status_code == 200
        return GateVisit.objects.filter(gate=self.gates[direction]).latest("arrived_at", "pk")

    def qr_path(self, direction: str) -> str:
        """The path of the QR code the gate's robot shows now."""
        present = self.commands(direction, "present")[-1]
        assert present.args["display"]["kind"] == "qr"
        return str(urlsplit(present.args["display"]["qr"]).path)

    def commands(self, direction: str, cmd: str) -> list[Command]:
        return list(
            Command.objects.filter(robot=self.robots[direction], cmd=cmd).order_by(
                "created_at", "pk"
            )
        )

    def voices(self, direction: str) -> list[str]:
        return [c.args.get("voice", "") for c in self.commands(direction, "present")]

    def give_pass(self, plate: str, *, expired_days: float) -> MonthlyPass:
        now = timezone.now()
        monthly = MonthlyPass.objects.create(
            lot=self.lot,
            owner="李四",
            phone="13800000000",
            valid_from=now - timedelta(days=90),
            valid_until=now - timedelta(days=expired_days),
        )
        PassPlate.objects.create(monthly_pass=monthly, lot=self.lot, plate=plate)
        return monthly

    def temp_stay(self, plate: str, minutes: int) -> Stay:
        return Stay.objects.create(
            lot=self.lot,
            plate=plate,
            entered_as=EnteredAs.TEMP,
            entered_at=timezone.now() - timedelta(minutes=minutes),
            entry_gate=self.gates["entry"],
        )


@pytest.fixture
def site(db: Any) -> Site:
    return Site()


def text(response: Any) -> str:
    return str(response.content.decode())


def pay_at_cashier(phone: Client, started: Any, *, action: str = "confirm") -> Any:
    """Follow ``立即支付``'s redirect to the sandbox's cashier and press its button."""
    assert started.status_code == 302, text(started)
    location = urlsplit(started["Location"])
    assert location.path.startswith("/sandbox/cashier/")
    url = f"{location.path}?{location.query}"
    cashier = phone.get(url)
    assert cashier.status_code == 200
    # the cashier's 确认支付 / 取消支付 (its words are the sandbox's, tested there)
    assert 'value="confirm"' in text(cashier)
    assert 'value="cancel"' in text(cashier)
    back = parse_qs(location.query)["return"][0]
    done = phone.post(url, {"action": action, "return": back})
    assert done.status_code == 302
    assert urlsplit(done["Location"]).path.startswith("/pay/")
    return phone.get(urlsplit(done["Location"]).path)


# --- unplated entry ----------------------------------------------------------------------------


def test_unplated_entry_takes_a_phone_gives_a_ticket_and_opens_the_gate(site: Site) -> None:
    visit = site.push("entry", None)
    assert visit.scenario == "entry.unplated"
    path = site.qr_path("entry")
    phone = Client(HTTP_USER_AGENT=IPHONE)

    form = phone.get(path)
    assert form.status_code == 200
    body = text(form)
    assert "手机号" in body
    assert "确认进场" in body
    assert 'name="viewport"' in body
    assert "彩科彩悦大厦" in body

    posted = phone.post(path, {"phone": "138 0013 8000"})
    assert posted.status_code == 302
    ticket_page = phone.get(path)
    body = text(ticket_page)
    assert "临000001" in body
    assert "出场时请在出口扫码" in body

    ticket = UnplatedTicket.objects.get()
    assert (ticket.temp_plate, ticket.phone, ticket.entry_visit_id) == (
        "临000001",
        "13800138000",
        visit.pk,
    )
    stay = ticket.stay
    assert (stay.plate, stay.entered_as, stay.exited_at) == ("临000001", "unplated", None)
    visit.refresh_from_db()
    assert visit.opened
    assert visit.stay_id == stay.pk
    assert site.voices("entry")[-1] == "欢迎光临"
    assert len(site.commands("entry", "open")) == 1

    # the same code again (a second tap, a reload): the same ticket, nothing new
    again = phone.post(path, {"phone": "13800138000"})
    assert again.status_code == 200
    assert "临000001" in text(again)
    assert UnplatedTicket.objects.count() == 1
    assert Stay.objects.count() == 1
    assert len(site.commands("entry", "open")) == 1


def test_the_next_unplated_car_gets_the_next_temporary_plate(site: Site) -> None:
    for n, number in enumerate(("13800138000", "13900139000"), start=1):
        site.push("entry", None)
        path = site.qr_path("entry")
        assert Client().post(path, {"phone": number}).status_code == 302
        assert UnplatedTicket.objects.filter(temp_plate=billing.temp_plate(n)).exists()


@pytest.mark.parametrize("bad", ["12345", "23800138000", "1380013800a", ""])
def test_a_bad_phone_number_is_refused_and_nothing_is_made(site: Site, bad: str) -> None:
    visit = site.push("entry", None)
    path = site.qr_path("entry")
    response = Client().post(path, {"phone": bad})
    assert response.status_code == 400
    body = text(response)
    assert "请输入正确的11位手机号" in body or "请输入手机号" in body
    assert "手机号" in body
    assert "确认进场" in body
    assert not UnplatedTicket.objects.exists()
    assert not Stay.objects.exists()
    visit.refresh_from_db()
    assert not visit.opened
    assert site.commands("entry", "open") == []


def test_inside_wechat_the_app_user_is_the_driver_no_phone_needed(site: Site) -> None:
    site.push("entry", None)
    path = site.qr_path("entry")
    phone = Client(HTTP_USER_AGENT=WECHAT)
    form = phone.get(path)
    assert form.status_code == 200
    assert 'name="phone"' not in text(form)
    assert "确认进场" in text(form)
    assert DRIVER_COOKIE in form.cookies
    assert phone.post(path, {}).status_code == 302
    ticket = UnplatedTicket.objects.get()
    assert ticket.payer.startswith("sb_")
    assert ticket.phone == ""

    # at the exit, inside WeChat again: the ticket is found without asking anything
    Stay.objects.filter(pk=ticket.stay_id).update(entered_at=timezone.now() - timedelta(minutes=90))
    site.push("exit", None)
    bill = phone.get(site.qr_path("exit"))
    assert bill.status_code == 200
    body = text(bill)
    assert "临000001" in body
    assert "¥8.00" in body
    assert "立即支付" in body


def test_an_app_user_posting_first_keeps_the_id_the_ticket_was_made_for(site: Site) -> None:
    site.push("entry", None)
    phone = Client(HTTP_USER_AGENT=WECHAT)
    posted = phone.post(site.qr_path("entry"), {})  # no page shown before: a new user id
    assert posted.status_code == 302
    assert DRIVER_COOKIE in posted.cookies
    ticket = UnplatedTicket.objects.get()
    Stay.objects.filter(pk=ticket.stay_id).update(entered_at=timezone.now() - timedelta(minutes=90))
    site.push("exit", None)
    assert "临000001" in text(phone.get(site.qr_path("exit")))


def test_a_code_whose_car_was_followed_by_another_lets_nobody_in(site: Site) -> None:
    site.push("entry", None)
    path = site.qr_path("entry")
    site.push("entry", "粤B55555")  # the unplated car backed away; another car is at the gate
    response = Client().post(path, {"phone": "13800138000"})
    assert response.status_code == 410
    assert "重新扫码" in text(response)
    assert not UnplatedTicket.objects.exists()


# --- unplated exit -----------------------------------------------------------------------------


def _admitted(site: Site, number: str = "13800138000", minutes: int = 90) -> UnplatedTicket:
    site.push("entry", None)
    assert Client().post(site.qr_path("entry"), {"phone": number}).status_code == 302
    ticket = UnplatedTicket.objects.get(phone=number)
    Stay.objects.filter(pk=ticket.stay_id).update(
        entered_at=timezone.now() - timedelta(minutes=minutes)
    )
    return ticket


def test_unplated_exit_finds_the_ticket_takes_the_fee_and_opens_the_exit(site: Site) -> None:
    ticket = _admitted(site)
    visit = site.push("exit", None)
    assert visit.scenario == "exit.unplated"
    path = site.qr_path("exit")
    phone = Client(HTTP_USER_AGENT=IPHONE)

    ask = phone.get(path)
    assert ask.status_code == 200
    assert "手机号" in text(ask)
    bill = phone.post(path, {"step": "find", "phone": "13800138000"})
    body = text(bill)
    assert bill.status_code == 200
    assert "临000001" in body
    assert "¥8.00" in body
    assert "立即支付" in body
    assert "1小时30分钟" in body

    started = phone.post(path, {"step": "pay", "phone": "13800138000"})
    result = pay_at_cashier(phone, started)
    body = text(result)
    assert result.status_code == 200
    assert "支付成功" in body
    assert "¥8.00" in body
    assert "道闸已打开，一路平安" in body

    order = Order.objects.get(state=OrderState.PAID)
    assert (order.kind, order.amount, order.plate, order.visit_id) == (
        "unplated",
        800,
        "临000001",
        visit.pk,
    )
    assert order.ticket_id == ticket.pk
    ticket.stay.refresh_from_db()
    assert ticket.stay.exited_at is not None
    assert site.voices("exit")[-1] == "一路平安"
    assert len(site.commands("exit", "open")) == 1

    # the same code after the car left: a clear page, nothing more
    after = phone.get(path)
    assert after.status_code == 410
    assert "已通过道闸" in text(after)


def test_unplated_exit_within_the_free_minutes_lets_the_car_out_free(site: Site) -> None:
    ticket = _admitted(site, minutes=10)
    site.push("exit", None)
    path = site.qr_path("exit")
    phone = Client()
    bill = phone.post(path, {"step": "find", "phone": "13800138000"})
    body = text(bill)
    assert "免费时段" in body
    assert "¥0.00" in body
    assert "开闸出场" in body
    assert "立即支付" not in body
    out = phone.post(path, {"step": "leave", "phone": "13800138000"})
    assert out.status_code == 200
    assert "道闸已打开，一路平安" in text(out)
    ticket.stay.refresh_from_db()
    assert ticket.stay.exited_at is not None
    assert len(site.commands("exit", "open")) == 1
    assert not Order.objects.exists()


def test_unplated_exit_with_an_unknown_phone_says_so_and_offers_the_call_button(
    site: Site,
) -> None:
    _admitted(site)
    site.push("exit", None)
    path = site.qr_path("exit")
    response = Client().post(path, {"step": "find", "phone": "13900000000"})
    assert response.status_code == 404
    body = text(response)
    assert "未找到" in body
    assert "呼叫按钮" in body
    bad = Client().post(path, {"step": "find", "phone": "139"})
    assert bad.status_code == 400
    assert "请输入正确的11位手机号" in text(bad)
    # leaving with a fee due is refused
    refused = Client().post(path, {"step": "leave", "phone": "13800138000"})
    assert refused.status_code == 409
    assert site.commands("exit", "open") == []


# --- temp quick-pay ----------------------------------------------------------------------------


def test_temp_quick_pay_at_the_exit_pays_and_the_gate_opens(site: Site) -> None:
    stay = site.temp_stay("粤B12345", 90)
    visit = site.push("exit", "粤B12345")
    assert visit.scenario == "exit.temp_unpaid"
    path = site.qr_path("exit")
    phone = Client(HTTP_USER_AGENT=IPHONE)

    bill = phone.get(path)
    body = text(bill)
    assert "粤B12345" in body
    assert "¥8.00" in body
    assert "立即支付" in body

    first = phone.post(path, {"step": "pay"})
    second = phone.post(path, {"step": "pay"})  # a second tap: the same order, re-sent
    assert first.status_code == second.status_code == 302
    assert Order.objects.count() == 1
    result = pay_at_cashier(phone, second)
    body = text(result)
    assert "支付成功" in body
    assert "¥8.00" in body
    assert "粤B12345" in body
    assert "道闸已打开，一路平安" in body
    stay.refresh_from_db()
    assert stay.exited_at is not None
    assert stay.paid == 800
    assert site.voices("exit")[-1] == "一路平安"
    assert len(site.commands("exit", "open")) == 1

    # the result page again: the same answer, nothing settled twice
    again = phone.get(urlsplit(result.request["PATH_INFO"]).path)
    assert "支付成功" in text(again)
    assert Order.objects.get().paid_amount == 800


def test_temp_quick_pay_with_nothing_due_lets_the_waiting_car_out(site: Site) -> None:
    stay = site.temp_stay("粤B12345", 90)
    site.push("exit", "粤B12345")
    path = site.qr_path("exit")
    Stay.objects.filter(pk=stay.pk).update(entered_at=timezone.now() - timedelta(minutes=5))
    page = Client().get(path)
    body = text(page)
    assert "无需缴费" in body
    assert "开闸出场" in body
    assert "立即支付" not in body
    out = Client().post(path, {"step": "pay"})  # a stale 立即支付: nothing due, the car goes
    assert "道闸已打开，一路平安" in text(out)
    assert len(site.commands("exit", "open")) == 1


def test_a_cancelled_payment_waits_then_leads_back(site: Site) -> None:
    site.temp_stay("粤B12345", 90)
    site.push("exit", "粤B12345")
    path = site.qr_path("exit")
    phone = Client()
    result = pay_at_cashier(phone, phone.post(path, {"step": "pay"}), action="cancel")
    body = text(result)
    assert "等待支付结果" in body
    assert 'http-equiv="refresh"' in body
    assert f'href="{path}"' in body
    assert "支付成功" not in body
    assert site.commands("exit", "open") == []


def test_a_temp_code_for_a_car_with_no_entry_record_says_call(site: Site) -> None:
    visit = site.push("exit", "粤B77777")
    response = Client().get(urlsplit(qr_url("temp_payment", visit.pk)).path)
    assert response.status_code == 404
    assert "入场记录" in text(response)
    assert "呼叫按钮" in text(response)


# --- pay inside the lot ------------------------------------------------------------------------


def test_pay_inside_the_lot_then_leave_free_within_the_grace(site: Site) -> None:
    stay = site.temp_stay("粤B12345", 90)
    phone = Client(HTTP_USER_AGENT=IPHONE)
    page = phone.get("/lot/caike/")
    assert page.status_code == 200
    assert "车牌" in text(page)

    bill = phone.post("/lot/caike/", {"step": "find", "plate": " 粤b·12345 "})
    body = text(bill)
    assert bill.status_code == 200
    assert "粤B12345" in body
    assert "¥8.00" in body
    assert "立即支付" in body
    assert "1小时30分钟" in body

    result = pay_at_cashier(phone, phone.post("/lot/caike/", {"step": "pay", "plate": "粤B12345"}))
    body = text(result)
    assert "支付成功" in body
    assert "请在15分钟内出场" in body
    assert site.commands("exit", "open") == []  # nobody waits at the exit yet

    # the car reaches the exit inside the grace: nothing due, the barrier opens on the read
    visit = site.push("exit", "粤B12345")
    assert visit.scenario == "exit.temp_paid"
    assert visit.opened
    stay.refresh_from_db()
    assert stay.exited_at is not None
    assert stay.paid == 800


def test_the_lot_page_refuses_bad_and_unknown_plates(site: Site) -> None:
    bad = Client().post("/lot/caike/", {"step": "find", "plate": "ABC"})
    assert bad.status_code == 400
    assert "请输入正确的车牌号" in text(bad)
    unknown = Client().post("/lot/caike/", {"step": "find", "plate": "粤B99999"})
    assert unknown.status_code == 404
    assert "粤B99999" in text(unknown)
    nowhere = Client().get("/lot/no-such-lot/")
    assert nowhere.status_code == 404
    assert "停车场" in text(nowhere)
    assert not Order.objects.exists()


def test_the_lot_page_works_for_a_temporary_plate(site: Site) -> None:
    _admitted(site)
    bill = Client().post("/lot/caike/", {"step": "find", "plate": "临000001"})
    assert bill.status_code == 200
    assert "¥8.00" in text(bill)


# --- monthly renewal ---------------------------------------------------------------------------


def test_an_expired_pass_renews_at_the_exit_and_the_gate_opens(site: Site) -> None:
    monthly = site.give_pass("粤B88888", expired_days=5)
    old_end = monthly.valid_until
    visit = site.push("exit", "粤B88888")
    assert visit.scenario == "exit.monthly_expired"
    path = site.qr_path("exit")
    phone = Client(HTTP_USER_AGENT=IPHONE)

    page = phone.get(path)
    body = text(page)
    assert page.status_code == 200
    assert "李*" in body
    assert "李四" not in body
    assert "粤B88888" in body
    assert "¥300.00" in body
    assert "¥900.00" in body
    assert "¥3600.00" in body
    assert "立即支付" in body
    assert "续费自月卡原到期日" in body

    bad = phone.post(path, {"step": "pay", "months": "5"})
    assert bad.status_code == 400
    assert not Order.objects.exists()

    result = pay_at_cashier(phone, phone.post(path, {"step": "pay", "months": "3"}))
    body = text(result)
    monthly.refresh_from_db()
    expected = billing.renewed_until(old_end, 3, timezone.get_default_timezone())
    assert monthly.valid_until == expected
    assert "支付成功" in body
    assert "¥900.00" in body
    assert expected.astimezone(timezone.get_default_timezone()).strftime("%Y-%m-%d") in body
    assert "原到期日" in body
    assert "道闸已打开，一路平安" in body
    assert site.voices("exit")[-1] == "一路平安"
    assert len(site.commands("exit", "open")) == 1


def test_an_expired_pass_renews_at_the_entry_and_the_car_comes_home(site: Site) -> None:
    monthly = site.give_pass("粤B88888", expired_days=2)
    visit = site.push("entry", "粤B88888")
    assert visit.scenario == "entry.monthly_expired"
    phone = Client()
    path = site.qr_path("entry")
    result = pay_at_cashier(phone, phone.post(path, {"step": "pay", "months": "1"}))
    body = text(result)
    assert "支付成功" in body
    assert "¥300.00" in body
    assert "道闸已打开，欢迎回家" in body
    monthly.refresh_from_db()
    assert monthly.valid_until > timezone.now()
    assert site.voices("entry")[-1] == "欢迎回家"
    assert len(site.commands("entry", "open")) == 1
    assert Stay.objects.get(plate="粤B88888").entered_as == "pass"


def test_a_lapsed_pass_is_told_to_contact_the_management_office(site: Site) -> None:
    monthly = site.give_pass("粤B88888", expired_days=5)
    site.push("exit", "粤B88888")
    path = site.qr_path("exit")
    # the pass crossed the payable days since the robot showed its code
    MonthlyPass.objects.filter(pk=monthly.pk).update(
        valid_until=timezone.now() - timedelta(days=10)
    )
    response = Client().get(path)
    assert response.status_code == 200
    assert "您的月卡超期未缴费，请联系管理处重新排队申请月卡" in text(response)
    assert "立即支付" not in text(response)


def test_renewal_offers_and_prices_come_from_provisioning(db: Any) -> None:
    document = {
        "lots": [
            {
                "code": "caike",
                "name": "彩科彩悦大厦",
                "monthly_price": 30000,
                "renewal_offers": [{"months": 3, "price": 85000}, {"months": 1, "price": 30000}],
            }
        ]
    }
    apply_plan(parse_plan(document))
    lot = Lot.objects.get(code="caike")
    assert lot.monthly_price == 30000
    assert lot.renewal_offers == [{"months": 1, "price": 30000}, {"months": 3, "price": 85000}]
    from eppark.domain.errors import BadInput

    offers = [{"months": 1, "price": 100}] * 2
    twice = {"lots": [{"code": "x", "name": "x", "renewal_offers": offers}]}
    with pytest.raises(BadInput, match=r"renewal_offers\[1\]\.months"):
        parse_plan(twice)
    with pytest.raises(BadInput, match="monthly_price"):
        parse_plan({"lots": [{"code": "x", "name": "x", "monthly_price": -1}]})


# --- tokens ------------------------------------------------------------------------------------


class _LongAgo(signing.TimestampSigner):
    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time()) - QR_MAX_AGE_S - 60)


def test_tampered_expired_and_misplaced_codes_get_clear_pages(site: Site) -> None:
    visit = site.push("entry", None)
    path = site.qr_path("entry")
    token = path.rsplit("/", 1)[-1]
    tampered = Client().get(f"/q/{token[:-2]}{'AB' if token[-2:] != 'AB' else 'CD'}")
    assert tampered.status_code == 400
    assert "二维码无效" in text(tampered)
    forged = signing.dumps({"k": "unplated_entry", "v": visit.pk}, key="x", salt="eppark.qr")
    assert Client().get(f"/q/{forged}").status_code == 400
    old = _LongAgo(salt="eppark.qr").sign_object({"k": "unplated_entry", "v": visit.pk})
    expired = Client().post(f"/q/{old}", {"phone": "13800138000"})
    assert expired.status_code == 400
    assert "二维码已过期" in text(expired)
    gone = Client().get(urlsplit(qr_url("unplated_entry", 987654)).path)
    assert gone.status_code == 404
    assert "未找到这次通行记录" in text(gone)
    # an entry code on an exit visit, an exit code on an entry visit
    exit_visit = site.push("exit", None)
    wrong = Client().post(
        urlsplit(qr_url("unplated_entry", exit_visit.pk)).path, {"phone": "13800138000"}
    )
    assert wrong.status_code == 400
    assert "不属于该道口" in text(wrong)
    wrong_exit = Client().get(urlsplit(qr_url("temp_payment", visit.pk)).path)
    assert wrong_exit.status_code == 400
    assert not UnplatedTicket.objects.exists()
    assert Command.objects.filter(cmd="open").count() == 0


def test_a_result_link_that_is_not_ours_gets_a_clear_page(site: Site) -> None:
    response = Client().get("/pay/not-a-token/")
    assert response.status_code == 400
    assert "支付链接无效" in text(response)


def test_the_pages_speak_english_when_chosen(site: Site) -> None:
    site.temp_stay("粤B12345", 90)
    site.push("exit", "粤B12345")
    phone = Client()
    phone.cookies["django_language"] = "en"
    body = text(phone.get(site.qr_path("exit")))
    assert "Pay now" in body
    assert "¥8.00" in body


# --- real WeChat: the openid by OAuth (snsapi_base), against a local stand-in ------------------


class _WechatOAuthStandIn(BaseHTTPRequestHandler):
    """WeChat's ``/sns/oauth2/access_token``: an openid for the code ``good-code``."""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        expected = {"appid": "wx-app", "secret": "app-secret", "grant_type": "authorization_code"}
        if url.path != "/sns/oauth2/access_token" or any(
            query.get(k) != v for k, v in expected.items()
        ):
            answer: dict[str, Any] = {"errcode": 40013, "errmsg": "invalid appid"}
        elif query.get("code") == "good-code":
            answer = {"access_token": "t", "expires_in": 7200, "openid": "o-driver-1"}
        else:
            answer = {"errcode": 40029, "errmsg": "invalid code"}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def real_wechat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """WeChat Pay configured for real (keys made here) and WeChat's OAuth at a local stand-in."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "apiclient_key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "pub_key.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WechatOAuthStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {
        "EPPARK_WECHATPAY_MCHID": "1900000001",
        "EPPARK_WECHATPAY_APPID": "wx-app",
        "EPPARK_WECHATPAY_APIV3_KEY": "k" * 32,
        "EPPARK_WECHATPAY_PRIVATE_KEY_FILE": str(tmp_path / "apiclient_key.pem"),
        "EPPARK_WECHATPAY_CERT_SERIAL": "SERIAL1",
        "EPPARK_WECHATPAY_PUBLIC_KEY_FILE": str(tmp_path / "pub_key.pem"),
        "EPPARK_WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_1",
        "EPPARK_WECHAT_APP_SECRET": "app-secret",
        "EPPARK_WECHAT_OAUTH_URL": "https://open.weixin.example/connect/oauth2/authorize",
        "EPPARK_WECHAT_API_URL": f"http://127.0.0.1:{server.server_port}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    providers.configured.cache_clear()
    try:
        assert not providers.sandbox_on()
        yield env["EPPARK_WECHAT_OAUTH_URL"]
    finally:
        providers.configured.cache_clear()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _through_wechat_oauth(phone: Client, path: str, authorize: str, code: str) -> Any:
    """Open ``path`` in WeChat: to the authorize URL, back to /wx/oauth/ with ``code``."""
    sent = phone.get(path)
    assert sent.status_code == 302
    location = urlsplit(sent["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == authorize
    assert location.fragment == "wechat_redirect"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["appid"] == "wx-app"
    assert query["scope"] == "snsapi_base"
    assert urlsplit(query["redirect_uri"]).path == "/wx/oauth/"
    back = phone.get("/wx/oauth/", {"code": code, "state": query["state"]})
    assert back.status_code == 302
    assert back["Location"] == path
    return back


def test_inside_wechat_for_real_the_openid_comes_from_oauth(site: Site, real_wechat: str) -> None:
    site.push("entry", None)
    path = site.qr_path("entry")
    phone = Client(HTTP_USER_AGENT=WECHAT)
    _through_wechat_oauth(phone, path, real_wechat, "good-code")
    form = phone.get(path)
    assert form.status_code == 200
    assert 'name="phone"' not in text(form)
    assert phone.post(path, {}).status_code == 302
    assert UnplatedTicket.objects.get().payer == "o-driver-1"


def test_a_refused_wechat_oauth_falls_back_to_the_phone(site: Site, real_wechat: str) -> None:
    site.push("entry", None)
    path = site.qr_path("entry")
    phone = Client(HTTP_USER_AGENT=WECHAT)
    _through_wechat_oauth(phone, path, real_wechat, "stale-code")
    form = phone.get(path)  # no second round trip: the phone field instead
    assert form.status_code == 200
    assert 'name="phone"' in text(form)
    assert phone.post(path, {}).status_code == 400
    assert phone.post(path, {"phone": "13800138000"}).status_code == 302
    ticket = UnplatedTicket.objects.get()
    assert (ticket.payer, ticket.phone) == ("", "13800138000")
    # a forged state is not believed
    stranger = Client(HTTP_USER_AGENT=WECHAT)
    assert stranger.get("/wx/oauth/", {"code": "good-code", "state": "x"}).status_code == 302
    assert DRIVER_COOKIE not in stranger.cookies


def test_a_lapsed_passs_car_pays_its_time_since_the_pass_ended_and_leaves(site: Site) -> None:
    # exit.monthly_lapsed: the temp quick-exit QR; the pass covered the stay up to its end
    monthly = site.give_pass("粤B88888", expired_days=8 - 2 / 24)  # 7 days 22 hours ago
    stay = Stay.objects.create(
        lot=site.lot,
        plate="粤B88888",
        entered_as=EnteredAs.PASS,
        entered_at=timezone.now() - timedelta(days=20),
        entry_gate=site.gates["entry"],
        monthly_pass=monthly,
    )
    visit = site.push("exit", "粤B88888")
    assert visit.scenario == "exit.monthly_lapsed"
    path = site.qr_path("exit")
    assert "eyJrIjoidGVtcF9wYXltZW50Ii" in path  # the temp quick-exit code
    phone = Client(HTTP_USER_AGENT=IPHONE)
    bill = text(phone.get(path))
    assert "立即支付" in bill
    # seven days at the 30 yuan daily cap, and 22 hours more (capped too)
    assert re.findall(r"¥[0-9.]+", bill) == ["¥240.00"]
    result = pay_at_cashier(phone, phone.post(path, {"step": "pay"}))
    assert "支付成功" in text(result)
    order = Order.objects.get()
    assert (order.kind, order.amount, order.state) == ("temp", 24000, "paid")
    stay.refresh_from_db()
    assert stay.exited_at is not None
    assert (stay.total, stay.paid) == (24000, 24000)
    assert site.voices("exit")[-1] == "一路平安"
    assert len(site.commands("exit", "open")) == 1
