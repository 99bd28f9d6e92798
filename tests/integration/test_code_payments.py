"""Payment codes shown to a robot's scanner, end to end: MQTT, the gateway, the payments worker,
the sandbox provider, the database.

A car waits at the exit (a real camera push decides ``exit.temp_unpaid`` and the robot
shows the QR code); the simulated robot publishes ``qr_scanned`` over a real Mosquitto; the
gateway queues the code's payment; the payments worker charges it through the sandbox (the
code's last digit decides: 0 pays, 1 waits for the driver, 2 is declined, 3 errors but
charged) and the robot is told what happened through the outbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import connection
from django.test import Client
from django.utils import timezone

from eppark.devices.models import Command, Robot, RobotEvent
from eppark.gateway import protocol, store
from eppark.lots.models import Gate, Lot
from eppark.orders.models import Order, OrderState
from eppark.passes.models import MonthlyPass, PassPlate
from eppark.payments import codepay, providers
from eppark.payments.models import CodePayment, CodeState, SandboxTrade
from eppark.payments.worker import PaymentsWorker
from eppark.sim.cameras import build_push
from eppark.stays.congestion import held_up
from eppark.stays.models import GateVisit, Resolution, Stay
from tests.integration import mqtt_fixtures
from tests.integration.factories import TARIFF, database_url_for_processes, keyed_camera
from tests.integration.mqtt_fixtures import TestBroker
from tests.integration.test_outbox_gateway import World, wait_until

mosquitto = mqtt_fixtures.mosquitto

pytestmark = pytest.mark.django_db(transaction=True)

EXIT = "EP-0002"
ENTRY = "EP-0001"
PLATE = "粤B12345"
DUE = 500 + 300  # TARIFF: 1 h 45 min parked → first hour ¥5.00, then one unit ¥3.00


def wechat_code(last: str) -> str:
    """A WeChat payment code (18 digits, 13…) ending in ``last``."""
    return f"13{uuid.uuid4().int % 10**15:015d}{last}"


class PayWorld(World):
    """``World``'s lot, gateway and robots, plus the payments worker in the same loop."""

    def __init__(self, broker: TestBroker) -> None:
        super().__init__(broker)
        self.worker = PaymentsWorker(interval=0.05, jobs_every=3600)
        self.loop.start(self.worker.run())

    def car_waiting_at_exit(self, plate: str = PLATE, minutes: int = 105) -> GateVisit:
        """A temp car parked ``minutes`` arrives at the exit: the robot shows the pay QR."""
        Stay.objects.create(
            lot=self.lot,
            plate=plate,
            entered_as="temp",
            entered_at=timezone.now() - timedelta(minutes=minutes),
            entry_gate=self.robots[ENTRY].gate,
        )
        self.read(EXIT, plate)
        visit = GateVisit.objects.get(plate=plate, gate=self.robots[EXIT].gate)
        assert visit.scenario == "exit.temp_unpaid"
        return visit

    def scan(self, code: str, robot: str = EXIT) -> None:
        self.loop.run(self.sims[robot].scan_qr(code))

    def voices(self, robot: str = EXIT) -> list[str]:
        """What the robot was told to say, in order (every present staged, delivered or not)."""
        return [
            c.args.get("voice", "")
            for c in Command.objects.filter(robot=self.robots[robot], cmd="present").order_by(
                "created_at", "pk"
            )
        ]

    def shown(self, robot: str = EXIT) -> list[str | None]:
        """What the simulated robot really said (the presents it carried out)."""
        return [
            getattr(c.args, "voice", None) for c in self.sims[robot].executed if c.cmd == "present"
        ]

    def last_present(self, robot: str = EXIT) -> dict[str, Any]:
        command = (
            Command.objects.filter(robot=self.robots[robot], cmd="present")
            .order_by("-created_at", "-pk")
            .first()
        )
        assert command is not None
        return dict(command.args)


@pytest.fixture
def world(mosquitto: TestBroker) -> Iterator[PayWorld]:
    built = PayWorld(mosquitto)
    try:
        yield built
    finally:
        built.close()


def _finished(what: str = "the code payment finished") -> CodePayment:
    wait_until(
        lambda: CodePayment.objects.filter(finished_at__isnull=False).exists(),
        timeout=30,
        what=what,
    )
    return CodePayment.objects.get()


def _gate_opened(world: PayWorld, visit: GateVisit) -> None:
    wait_until(lambda: world.sims[EXIT].opens == 1, timeout=30, what="the exit gate opened")
    wait_until(
        lambda: world.sims[EXIT].screen.voice == "一路平安",
        timeout=30,
        what="the robot says 一路平安",
    )
    visit.refresh_from_db()
    assert visit.opened
    assert visit.resolution == Resolution.OPENED


# --- the four digits ------------------------------------------------------------------------


def alipay_code(last: str) -> str:
    """An Alipay payment code (18 digits, 28…) ending in ``last``."""
    return f"28{uuid.uuid4().int % 10**15:015d}{last}"


@pytest.mark.parametrize(
    ("channel", "make_code"), [("wechat", wechat_code), ("alipay", alipay_code)]
)
def test_a_code_that_pays_at_once_opens_the_gate(
    world: PayWorld, channel: str, make_code: Any
) -> None:
    visit = world.car_waiting_at_exit()
    code = make_code("0")
    world.scan(code)
    payment = _finished()
    _gate_opened(world, visit)
    assert payment.state == CodeState.SUCCEEDED
    assert payment.code == ""  # only the masked code is kept
    assert payment.code_masked == code[:2] + "*" * 12 + code[-4:]
    order = Order.objects.get()
    assert (order.state, order.amount, order.paid_amount) == (OrderState.PAID, DUE, DUE)
    assert (order.provider, order.channel, order.gate_id) == ("sandbox", channel, visit.gate_id)
    assert world.voices()[:2] == ["请扫码缴费后出场", codepay.PAYING]
    assert world.voices()[-1] == "一路平安"
    assert Command.objects.filter(robot=world.robots[EXIT], cmd="open").count() == 1
    # the event is kept with the code masked, never whole
    event = RobotEvent.objects.get(type="qr_scanned")
    assert event.data == {"code": payment.code_masked}
    assert code not in json.dumps(list(RobotEvent.objects.values_list("data", flat=True)))
    trade = SandboxTrade.objects.get()
    assert (trade.state, trade.amount, trade.channel) == ("SUCCESS", DUE, channel)


def test_a_code_awaiting_the_drivers_confirmation_pays_after_the_query(world: PayWorld) -> None:
    visit = world.car_waiting_at_exit()
    world.scan(wechat_code("1"))
    wait_until(
        lambda: codepay.CONFIRM_ON_PHONE in world.voices(),
        timeout=30,
        what="the robot asks the driver to confirm on the phone",
    )
    wait_until(
        lambda: codepay.CONFIRM_ON_PHONE in world.shown(),
        timeout=30,
        what="the robot showed it",
    )
    payment = _finished()
    _gate_opened(world, visit)
    assert payment.state == CodeState.SUCCEEDED
    assert payment.attempts >= 2  # the charge, then at least one query
    assert Order.objects.get().state == OrderState.PAID


def test_a_declined_code_closes_the_order_and_the_car_still_waits(world: PayWorld) -> None:
    visit = world.car_waiting_at_exit()
    world.scan(wechat_code("2"))
    payment = _finished()
    assert payment.state == CodeState.DECLINED
    assert "余额不足" in payment.detail
    order = Order.objects.get()
    assert order.state == OrderState.CLOSED
    # the robot says why, over the QR screen again (the driver can scan it or try another code)
    shown = world.last_present()
    assert shown["voice"] == "支付失败：余额不足"
    assert shown["display"]["kind"] == "qr"
    assert "/q/" in shown["display"]["qr"]
    assert shown["display"]["text"] == "支付失败：余额不足"
    wait_until(
        lambda: world.sims[EXIT].screen.voice == "支付失败：余额不足",
        timeout=30,
        what="the robot showed the failure",
    )
    visit.refresh_from_db()
    assert not visit.opened
    assert visit.resolved_at is None
    assert world.sims[EXIT].opens == 0
    # the driver did nothing else: after the manual's minute the car is on the outbound list
    later = timezone.now() + timedelta(minutes=2)
    assert list(held_up(later)) == [visit]
    # a second code pays a new order
    world.scan(wechat_code("0"))
    wait_until(
        lambda: CodePayment.objects.filter(state=CodeState.SUCCEEDED).exists(),
        timeout=30,
        what="the second code paid",
    )
    _gate_opened(world, visit)
    assert sorted(Order.objects.values_list("state", flat=True)) == ["closed", "paid"]
    assert not held_up(later).exists()


def test_a_code_that_errors_but_charged_is_found_paid_by_the_query(world: PayWorld) -> None:
    visit = world.car_waiting_at_exit()
    world.scan(wechat_code("3"))
    payment = _finished()
    _gate_opened(world, visit)
    assert payment.state == CodeState.SUCCEEDED
    assert payment.attempts == 2  # one charge (never a second), one query
    assert SandboxTrade.objects.get().state == "SUCCESS"
    assert Order.objects.get().state == OrderState.PAID


def test_a_code_never_confirmed_is_reversed(world: PayWorld, settings: Any) -> None:
    settings.EPPARK_CODEPAY_GIVE_UP_S = 0.5  # the sandbox's driver confirms after 3 s: too late
    visit = world.car_waiting_at_exit()
    world.scan(wechat_code("1"))
    payment = _finished()
    assert payment.state == CodeState.REVERSED
    assert SandboxTrade.objects.get().state == "REVOKED"
    assert Order.objects.get().state == OrderState.CLOSED
    shown = world.last_present()
    assert shown["voice"] == codepay.FAILED + codepay.TIMED_OUT_REASON, (
        world.voices(),
        payment.detail,
        payment.attempts,
        payment.started_at,
        payment.finished_at,
    )
    assert shown["display"]["kind"] == "qr"
    visit.refresh_from_db()
    assert not visit.opened
    assert visit.resolved_at is None
    assert world.sims[EXIT].opens == 0


# --- codes that pay nothing ----------------------------------------------------------------


def test_a_code_that_is_not_a_payment_code_does_not_let_the_car_off_the_list(
    world: PayWorld,
) -> None:
    visit = world.car_waiting_at_exit()
    world.scan("https://example.com/not-a-payment-code")
    wait_until(
        lambda: RobotEvent.objects.filter(type="qr_scanned").exists(),
        timeout=30,
        what="the scan recorded",
    )
    wait_until(
        lambda: world.voices()[-1] == codepay.SHOW_PAYMENT_CODE,
        timeout=30,
        what="the robot asks for a payment code",
    )
    shown = world.last_present()
    assert shown["display"]["kind"] == "qr"  # its QR screen stays up, with the hint
    assert shown["display"]["text"] == codepay.SHOW_PAYMENT_CODE
    visit.refresh_from_db()
    assert visit.resolved_at is None
    assert list(held_up(timezone.now() + timedelta(minutes=2))) == [visit]
    assert not CodePayment.objects.exists()
    assert not Order.objects.exists()


def test_an_unplated_car_is_asked_for_the_exit_qr(world: PayWorld) -> None:
    world.read(EXIT, None)
    visit = GateVisit.objects.get(gate=world.robots[EXIT].gate)
    assert visit.scenario == "exit.unplated"
    world.scan(wechat_code("0"))
    wait_until(
        lambda: world.voices()[-1] == codepay.UNPLATED_USE_QR,
        timeout=30,
        what="the robot asks for the exit QR",
    )
    assert not CodePayment.objects.exists()
    visit.refresh_from_db()
    assert visit.resolved_at is None


def test_an_expired_pass_renews_by_code_for_one_month_and_enters(world: PayWorld) -> None:
    world.lot.monthly_price = 30000
    world.lot.save()
    now = timezone.now()
    monthly = MonthlyPass.objects.create(
        lot=world.lot,
        owner="车主",
        phone="13800000000",
        valid_from=now - timedelta(days=60),
        valid_until=now - timedelta(days=5),
    )
    PassPlate.objects.create(monthly_pass=monthly, lot=world.lot, plate="粤B99999")
    world.read(ENTRY, "粤B99999")
    visit = GateVisit.objects.get(plate="粤B99999")
    assert visit.scenario == "entry.monthly_expired"
    world.scan(wechat_code("0"), robot=ENTRY)
    wait_until(lambda: world.sims[ENTRY].opens == 1, timeout=30, what="the entry gate opened")
    order = Order.objects.get()
    assert (order.kind, order.months, order.amount, order.state) == ("monthly", 1, 30000, "paid")
    monthly.refresh_from_db()
    assert monthly.valid_until > now + timedelta(days=20)
    wait_until(lambda: world.sims[ENTRY].screen.voice == "欢迎回家", timeout=30, what="欢迎回家")


def test_a_redelivered_scan_pays_once(world: PayWorld) -> None:
    visit = world.car_waiting_at_exit()
    event = protocol.Event(f"{EXIT}-dup", timezone.now(), protocol.QrScanned(wechat_code("0")))
    payload = event.to_json().encode()
    store.apply_events([(EXIT, payload)], timezone.now())
    store.apply_events([(EXIT, payload)], timezone.now())  # QoS 1 redelivers
    _finished()
    _gate_opened(world, visit)
    assert CodePayment.objects.count() == 1
    assert Order.objects.count() == 1
    assert SandboxTrade.objects.count() == 1


# --- the provider down ----------------------------------------------------------------------


@pytest.fixture
def wechat_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A real WeChat Pay configuration whose service cannot be reached (nothing listens)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = tmp_path / "apiclient_key.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = tmp_path / "pub_key.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    env = {
        "EPPARK_WECHATPAY_MCHID": "1900000001",
        "EPPARK_WECHATPAY_APPID": "wx0000000000000001",
        "EPPARK_WECHATPAY_APIV3_KEY": "0123456789abcdef0123456789abcdef",
        "EPPARK_WECHATPAY_PRIVATE_KEY_FILE": str(private),
        "EPPARK_WECHATPAY_CERT_SERIAL": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        "EPPARK_WECHATPAY_PUBLIC_KEY_FILE": str(public),
        "EPPARK_WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0000000001",
        "EPPARK_WECHATPAY_BASE_URL": f"http://127.0.0.1:{mqtt_fixtures.free_port()}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    providers.configured.cache_clear()
    try:
        assert providers.configured()["wechat"].name == "wechat"
        yield
    finally:
        for name in env:
            monkeypatch.delenv(name)
        providers.configured.cache_clear()


def _scan_queued(code: str, robot_code: str, now: datetime) -> CodePayment:
    event = protocol.Event(f"{robot_code}-{uuid.uuid4().hex}", now, protocol.QrScanned(code))
    store.apply_events([(robot_code, event.to_json().encode())], now)
    return CodePayment.objects.get()


def _exit_lot() -> None:
    """A lot with an exit gate and its robot, and a temp car (105 minutes) read at the exit."""
    lot = Lot.objects.create(code="down", name="彩科", capacity=5, tariff=TARIFF)
    gate = Gate.objects.create(
        lot=lot, code="exit", name="exit", direction="exit", opening_channel="robot"
    )
    Robot.objects.create(code=EXIT, name="exit", lot=lot, gate=gate)
    camera = keyed_camera("k-down", vendor="hikvision", lot=lot, gate=gate, serial="sn-down")
    start = timezone.now()
    Stay.objects.create(
        lot=lot, plate=PLATE, entered_as="temp", entered_at=start - timedelta(minutes=105)
    )
    push = build_push("hikvision", camera.serial, PLATE, start, plate_id=1)
    response = Client().post(
        f"/devices/lpr/hikvision/{camera.key}", data=push.body, content_type=push.content_type
    )
    assert response.status_code == 200


def test_a_scan_kept_by_an_offline_robot_pays_nothing_when_it_arrives_late() -> None:
    _exit_lot()
    now = timezone.now()
    event = protocol.Event(
        f"{EXIT}-late", now - timedelta(minutes=3), protocol.QrScanned(wechat_code("0"))
    )
    store.apply_events([(EXIT, event.to_json().encode())], now)
    assert RobotEvent.objects.filter(type="qr_scanned").count() == 1
    assert not CodePayment.objects.exists()
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_with_the_provider_down_the_code_is_charged_once_and_the_order_left_to_the_jobs(
    wechat_down: None,
) -> None:
    _exit_lot()
    visit = GateVisit.objects.get()
    assert visit.scenario == "exit.temp_unpaid"
    start = timezone.now()
    payment = _scan_queued(wechat_code("0"), EXIT, start)
    assert payment.state == CodeState.QUEUED
    assert payment.code
    # the worker's rounds, each when the last one said the next step is due
    now = start
    for _ in range(10):
        codepay.run_due(now)
        payment.refresh_from_db()
        if payment.finished_at is not None:
            break
        assert payment.next_step_at is not None
        assert payment.state == CodeState.CHECKING  # never charged a second time: queried
        assert payment.code == ""  # erased before the charge call
        now = payment.next_step_at
    assert payment.state == CodeState.FAILED
    assert "reverse failed" in payment.detail
    # one charge call, the four queries after it, one reverse: nothing else
    assert payment.attempts == 1 + 4 + 1
    order = Order.objects.get()
    assert order.state == OrderState.PAYING  # the payments jobs ask again later
    visit.refresh_from_db()
    assert visit.resolved_at is None
    assert not visit.opened
    last = Command.objects.filter(cmd="present").order_by("-created_at", "-pk").first()
    assert last is not None
    assert last.args["voice"] == codepay.FAILED + codepay.UNREACHABLE_REASON


# --- `eppark payments`, a process of its own -------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


class GatewayOnly(PayWorld):
    """``PayWorld`` without the in-process worker: ``eppark payments`` runs it elsewhere."""

    def __init__(self, broker: TestBroker) -> None:
        World.__init__(self, broker)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a process of its own: PostgreSQL")
def test_eppark_payments_charges_the_code_from_a_process_of_its_own(
    mosquitto: TestBroker, tmp_path: Path
) -> None:
    world = GatewayOnly(mosquitto)
    log_file = tmp_path / "payments.log"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_processes(),
        EPPARK_SECRET_KEY="payments-process-test-secret",
        EPPARK_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.pop("PYTEST_VERSION", None)
    process: subprocess.Popen[bytes] | None = None
    try:
        visit = world.car_waiting_at_exit()
        with log_file.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "eppark", "payments"],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        world.scan(wechat_code("0"))
        # its robot commands reach the gateway of this test by NOTIFY (or its poll)
        wait_until(lambda: world.sims[EXIT].opens == 1, timeout=60, what="the exit gate opened")
        visit.refresh_from_db()
        assert visit.opened
        assert Order.objects.get().state == OrderState.PAID
        assert CodePayment.objects.get().state == CodeState.SUCCEEDED
        process.terminate()
        assert process.wait(30) == 0  # SIGTERM: a clean stop
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        world.close()
    output = log_file.read_text()
    assert "Payments worker running" in output
    assert "Traceback" not in output, output[-3000:]
