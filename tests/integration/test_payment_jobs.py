"""The payments worker's book-keeping jobs (``eppark.payments.jobs``) and its loop's robustness.

Orders stuck in paying are asked about at the provider (the sandbox, or a WeChat Pay
configuration nobody answers) and settled when paid; orders past their expiry are closed
there and here; an order whose payment code is still being charged is the worker's.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from eppark.devices.models import Command, Robot
from eppark.lots.models import Gate, Lot
from eppark.orders.models import Order, OrderState
from eppark.orders.placing import order_for_stay
from eppark.payments import checkout, codepay, jobs, providers
from eppark.payments.models import CodePayment, CodeState, SandboxTrade
from eppark.payments.providers.sandbox import pay_at_cashier
from eppark.payments.worker import PaymentsWorker
from eppark.sim.cameras import build_push
from eppark.stays.models import GateVisit, Stay
from tests.integration.factories import TARIFF, keyed_camera
from tests.integration.test_code_payments import wechat_code, wechat_down

pytestmark = pytest.mark.django_db(transaction=True)
PLATE = "粤B12345"
__all__ = ["wechat_down"]  # the fixture, used by name


class Lot1:
    """A lot with an exit gate and its robot; a temp car inside for 105 minutes."""

    def __init__(self) -> None:
        self.lot = Lot.objects.create(code="ckcy", name="彩科", capacity=10, tariff=TARIFF)
        self.gate = Gate.objects.create(
            lot=self.lot, code="exit", name="exit", direction="exit", opening_channel="robot"
        )
        self.robot = Robot.objects.create(code="EP-0002", name="exit", lot=self.lot, gate=self.gate)
        self.camera = keyed_camera(
            "k-jobs", vendor="hikvision", lot=self.lot, gate=self.gate, serial="sn-jobs"
        )
        self.stay = Stay.objects.create(
            lot=self.lot,
            plate=PLATE,
            entered_as="temp",
            entered_at=timezone.now() - timedelta(minutes=105),
        )

    def car_at_exit(self) -> GateVisit:
        push = build_push("hikvision", self.camera.serial, PLATE, timezone.now(), plate_id=1)
        response = Client().post(
            f"/devices/lpr/hikvision/{self.camera.key}",
            data=push.body,
            content_type=push.content_type,
        )
        assert response.status_code == 200
        return GateVisit.objects.get(gate=self.gate)

    def order(self, now: datetime) -> Order:
        placed = order_for_stay(self.stay, now)
        assert placed is not None
        return placed

    def paying(self, now: datetime, channel: str = "wechat") -> Order:
        """An order sent to the sandbox's cashier page (the driver is paying on the phone)."""
        order = self.order(now)
        checkout.start_page_payment(order, providers.for_channel(channel), return_url="/x", now=now)
        order.refresh_from_db()
        assert order.state == OrderState.PAYING
        return order


def _age(order: Order, by: timedelta) -> None:
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - by)


def test_a_stuck_order_paid_at_the_provider_is_settled_and_the_waiting_car_let_out() -> None:
    world = Lot1()
    visit = world.car_at_exit()
    now = timezone.now()
    order = world.paying(now)
    pay_at_cashier(order.out_trade_no, payer="o-driver", now=now)  # its notification is lost
    assert jobs.stuck_paying(timezone.now()) == 0  # paying for under a minute: left alone
    _age(order, timedelta(minutes=2))
    assert jobs.stuck_paying(timezone.now()) == 1
    order.refresh_from_db()
    assert order.state == OrderState.PAID
    assert order.paid_amount == order.amount
    visit.refresh_from_db()
    assert visit.opened
    assert Command.objects.filter(robot=world.robot, cmd="open").count() == 1
    last = Command.objects.filter(cmd="present").order_by("-created_at", "-pk").first()
    assert last is not None
    assert last.args["voice"] == "一路平安"
    assert jobs.stuck_paying(timezone.now()) == 0  # paid: never asked again


def test_a_stuck_order_not_paid_stays_paying() -> None:
    world = Lot1()
    order = world.paying(timezone.now())
    _age(order, timedelta(minutes=2))
    assert jobs.stuck_paying(timezone.now()) == 0
    order.refresh_from_db()
    assert order.state == OrderState.PAYING


def test_expired_orders_are_closed_at_the_provider_and_here() -> None:
    world = Lot1()
    now = timezone.now()
    paying = world.paying(now)
    later = (paying.expires_at or now) + timedelta(seconds=1)
    assert jobs.expired(now) == 0  # not expired yet
    assert jobs.expired(later) == 1
    paying.refresh_from_db()
    assert paying.state == OrderState.CLOSED
    assert paying.closed_at == later
    assert SandboxTrade.objects.get(out_trade_no=paying.out_trade_no).state == "CLOSED"
    # an order never sent to a provider is simply closed
    created = world.order(later)
    assert created.state == OrderState.CREATED
    assert jobs.expired((created.expires_at or later) + timedelta(seconds=1)) == 1
    created.refresh_from_db()
    assert created.state == OrderState.CLOSED


def test_an_expired_order_paid_after_all_is_settled_not_closed() -> None:
    world = Lot1()
    now = timezone.now()
    order = world.paying(now)
    pay_at_cashier(order.out_trade_no, payer="", now=now)
    assert jobs.expired((order.expires_at or now) + timedelta(seconds=1)) == 0
    order.refresh_from_db()
    assert order.state == OrderState.PAID
    assert SandboxTrade.objects.get().state == "SUCCESS"


def test_a_provider_that_cannot_be_reached_leaves_the_order_for_next_time(
    wechat_down: None, caplog: pytest.LogCaptureFixture
) -> None:
    world = Lot1()
    now = timezone.now()
    order = world.order(now)
    # sent to WeChat Pay before it went down
    Order.objects.filter(pk=order.pk).update(
        state=OrderState.PAYING, provider="wechat", channel="wechat"
    )
    _age(order, timedelta(minutes=2))
    later = (order.expires_at or now) + timedelta(minutes=1)
    with caplog.at_level(logging.INFO):
        assert jobs.stuck_paying(later) == 0
        assert jobs.expired(later) == 0
    order.refresh_from_db()
    assert order.state == OrderState.PAYING  # never closed while the provider might take money
    assert order.closed_at is None


def test_an_order_whose_code_is_being_charged_is_the_workers() -> None:
    world = Lot1()
    visit = world.car_at_exit()
    now = timezone.now()
    order = world.paying(now)
    CodePayment.objects.create(
        order=order,
        lot=world.lot,
        gate=world.gate,
        visit=visit,
        event_id="EP-0002-under-way",
        channel="wechat",
        code_masked="13************6780",
        state=CodeState.USERPAYING,
        started_at=now,
        next_step_at=now + timedelta(hours=1),
    )
    pay_at_cashier(order.out_trade_no, payer="", now=now)
    _age(order, timedelta(minutes=2))
    later = (order.expires_at or now) + timedelta(seconds=1)
    assert jobs.stuck_paying(later) == 0
    assert jobs.expired(later) == 0
    order.refresh_from_db()
    assert order.state == OrderState.PAYING


def test_one_bad_code_payment_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = Lot1()
    visit = world.car_at_exit()
    now = timezone.now()
    broken = CodePayment.objects.create(
        order=world.order(now),
        lot=world.lot,
        gate=world.gate,
        visit=visit,
        event_id="EP-0002-broken",
        channel="paypal",  # no provider takes it
        code="134567890123456780",
        code_masked="13************6780",
        started_at=now - timedelta(seconds=1),
        next_step_at=now - timedelta(seconds=1),
    )
    other = Lot1.__new__(Lot1)
    other.lot = Lot.objects.create(code="other", name="另一个", capacity=10, tariff=TARIFF)
    other.stay = Stay.objects.create(
        lot=other.lot,
        plate=PLATE,
        entered_as="temp",
        entered_at=now - timedelta(minutes=105),
    )
    good = CodePayment.objects.create(
        order=other.order(now),
        lot=world.lot,
        gate=world.gate,
        visit=visit,
        event_id="EP-0002-good",
        channel="wechat",
        code=wechat_code("0"),
        code_masked="13************0000",
        started_at=now,
        next_step_at=now,
    )
    worker = PaymentsWorker(jobs_every=3600)
    with caplog.at_level(logging.ERROR):
        worker.tick()
    assert "step failed" in caplog.text
    good.refresh_from_db()
    assert good.state == CodeState.SUCCEEDED
    broken.refresh_from_db()
    assert broken.finished_at is None
    assert broken.next_step_at is not None
    assert broken.next_step_at > now  # tried again later, not in a tight loop
    assert worker.rounds == 1


def test_the_worker_runs_the_jobs_in_its_round() -> None:
    world = Lot1()
    now = timezone.now()
    order = world.order(now)
    Order.objects.filter(pk=order.pk).update(expires_at=now - timedelta(seconds=1))
    PaymentsWorker(jobs_every=3600).tick()
    order.refresh_from_db()
    assert order.state == OrderState.CLOSED
    assert codepay.orders_under_way() == set()


@pytest.mark.skipif(connection.vendor == "postgresql", reason="on PostgreSQL it runs")
def test_eppark_payments_as_a_process_of_its_own_needs_postgresql() -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="PostgreSQL"):
        call_command("payments")
