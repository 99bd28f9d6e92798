"""The demo's simulated drivers in a small demo-like world, end to end.

A live server (real HTTP), an embedded MQTT broker, the gateway, the payments
worker (code payments, the sandbox's notifications), simulated robots, and the
drivers of ``eppark.sim.drivers``: cars arrive through real camera pushes
(``Traffic.arrive``), each driver reacts to what its robot shows — scans the QR
code and follows the pages over HTTP, shows a payment code to the scanner, or
does nothing; one pays on the lot page before walking to the car. Nothing here
calls the payment code directly: what is asserted is what the drivers' actions
did (orders paid, gates opened, a pass renewed, a held-up car on the outbound
call list, the day's reconciliation).
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from django.utils import timezone

from eppark.devices.credentials import hash_password
from eppark.devices.models import Camera, Robot
from eppark.gateway.broker import EmbeddedBroker
from eppark.gateway.protocol import GATEWAY_USER
from eppark.gateway.service import Gateway
from eppark.lots.models import Gate, Lot
from eppark.orders.models import Order, OrderState
from eppark.passes.models import MonthlyPass, PassPlate
from eppark.payments.models import Reconciliation
from eppark.payments.reconcile import business_day
from eppark.payments.worker import PaymentsWorker
from eppark.sim.drivers import Drivers, Habit, Outcome, owing_car, reconcile_today
from eppark.sim.robot import SimRobot
from eppark.sim.traffic import Arrival, Traffic
from eppark.stays.congestion import held_up
from eppark.stays.models import EnteredAs, GateVisit, Stay, UnplatedTicket
from tests.integration import mqtt_fixtures
from tests.integration.factories import TARIFF, keyed_camera

pytestmark = pytest.mark.django_db(transaction=True)
T = TypeVar("T")
GATEWAY_PASSWORD = "gateway-secret"
GATES = (("entry-1", "entry"), ("entry-2", "entry"), ("exit-1", "exit"), ("exit-2", "exit"))


class Loop:
    """An asyncio loop in a thread of its own: broker, gateway, worker, robots, drivers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self, coroutine: Coroutine[Any, Any, T]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def close(self) -> None:
        self.run(mqtt_fixtures.cancel_tasks(timeout=15))
        mqtt_fixtures.close_loop_thread(self.loop, self.thread)


def wait_until(check: Callable[[], bool], timeout: float = 45.0, what: str = "") -> None:
    """Poll ``check`` until true (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.1)


class World:
    """One lot, two entry and two exit gates with robots and cameras, and the whole demo loop."""

    def __init__(self, base_url: str, habits: dict[str, Habit]) -> None:
        self.now = timezone.now()
        self.lot = Lot.objects.create(
            code="caike",
            name="彩科彩悦大厦",
            capacity=100,
            tariff=TARIFF,
            temp_entry_confirmation=False,
            monthly_price=30000,
        )
        self.passwords: dict[str, str] = {}
        self.cameras: dict[str, Camera] = {}
        for code, direction in GATES:
            gate = Gate.objects.create(
                lot=self.lot, code=code, name=code, direction=direction, opening_channel="robot"
            )
            robot_code = f"EP-{code}"
            self.passwords[robot_code] = f"pw-{code}"
            robot = Robot.objects.create(
                code=robot_code,
                name=code,
                lot=self.lot,
                gate=gate,
                mqtt_password_hash=hash_password(self.passwords[robot_code]),
            )
            self.cameras[code] = keyed_camera(
                f"k-{code}", vendor="vzenith", lot=self.lot, gate=gate, robot=robot, serial=code
            )
        users = {**self.passwords, GATEWAY_USER: GATEWAY_PASSWORD}
        self.port = mqtt_fixtures.free_port()
        url = f"mqtt://127.0.0.1:{self.port}"
        self.loop = Loop()
        self.broker = EmbeddedBroker(
            "127.0.0.1", self.port, lambda user, password: users.get(user) == password
        )
        self.loop.run(self.broker.start())
        self.gateway = Gateway(url, password=GATEWAY_PASSWORD, poll_interval=0.2)
        self.loop.start(self.gateway.run())
        self.loop.start(PaymentsWorker(interval=0.2, jobs_every=3600).run())
        self.robots = {
            code: SimRobot(code, password, url, out=io.StringIO(), max_backoff=0.5)
            for code, password in self.passwords.items()
        }
        for sim in self.robots.values():
            self.loop.start(sim.run())
        self.drivers = Drivers(
            choose=lambda arrival: habits[arrival.plate or arrival.scenario],
            idle_patience=(600.0, 600.0),  # the one who does nothing stays put
            patience=(2.0, 2.0),
            open_timeout=20.0,
        )
        self.base_url = base_url
        self.traffic = Traffic(base_url, self.robots, drivers=self.drivers)
        self.loop.run(self._online())

    async def _online(self) -> None:
        async with asyncio.timeout(20):
            await self.gateway.connected.wait()
            for robot in self.robots.values():
                await robot.online.wait()

    def arrive(self, gate: str, scenario: str, plate: str | None) -> None:
        """A car reaches ``gate``: the robot's loop, the camera's push, then its driver acts."""
        camera = self.cameras[gate]
        arrival = Arrival(
            scenario,
            camera.pk,
            "vzenith",
            camera.key or "",
            camera.serial,
            plate,
            f"EP-{gate}",
            "caike",
        )
        status = self.loop.run(self.traffic.arrive(arrival))
        assert status == 200

    def outcome(self, scenario: str, plate: str = "") -> Outcome | None:
        return next(
            (o for o in self.drivers.outcomes if o.scenario == scenario and o.plate == plate),
            None,
        )

    def opened(self, gate: str) -> int:
        return len(self.robots[f"EP-{gate}"].opened)

    def close(self) -> None:
        try:
            self.loop.run(self.traffic.stop_drivers())
            self.loop.run(self.broker.stop())
        finally:
            self.loop.close()


@pytest.fixture
def settings_for_the_world(settings: Any, live_server: Any) -> Any:
    settings.EPPARK_PUBLIC_URL = live_server.url  # the robots' QR codes point at this server
    settings.EPPARK_CONGESTION_SECONDS = 1  # the outbound list's minute, shortened
    return settings


def temp_car(lot: Lot, plate: str, hours: float) -> Stay:
    return Stay.objects.create(
        lot=lot,
        plate=plate,
        entered_as=EnteredAs.TEMP,
        entered_at=timezone.now() - timedelta(hours=hours),
        entry_gate=Gate.objects.get(lot=lot, code="entry-1"),
    )


def expired_pass(lot: Lot, plate: str, days: float) -> MonthlyPass:
    now = timezone.now()
    monthly = MonthlyPass.objects.create(
        lot=lot,
        owner="李四",
        phone="13800000000",
        valid_from=now - timedelta(days=60),
        valid_until=now - timedelta(days=days),
        spaces=1,
    )
    PassPlate.objects.create(monthly_pass=monthly, lot=lot, plate=plate)
    return monthly


@pytest.fixture
def world(settings_for_the_world: Any, live_server: Any) -> Iterator[World]:
    habits = {
        "粤B10001": Habit.PAGE,  # pays the temp fee on the QR page
        "粤B10002": Habit.CODE_DECLINED,  # a declined payment code, then pays another way
        "粤B10003": Habit.IDLE,  # does nothing
        "粤B20001": Habit.PAGE,  # renews the expired pass
        "粤B10004": Habit.CODE_SLOW,  # a code confirmed on the phone (USERPAYING)
        "粤B10005": Habit.PAGE,  # paid inside the lot already: nothing to do at the exit
        "entry.unplated": Habit.PAGE,
        "exit.unplated": Habit.PAGE,
    }
    built = World(live_server.url, habits)
    try:
        yield built
    finally:
        built.close()


def test_drivers_pay_register_renew_or_do_nothing(world: World) -> None:
    lot = world.lot
    for plate in ("粤B10001", "粤B10002", "粤B10003", "粤B10004", "粤B10005"):
        temp_car(lot, plate, hours=3)
    monthly = expired_pass(lot, "粤B20001", days=5)
    ended = monthly.valid_until

    # an unplated car registers on the entry QR page; an expired pass renews at the other entry;
    # two temp cars owing a fee reach the exits: one pays on the page, one shows a declined code
    world.arrive("entry-1", "entry.unplated", None)
    world.arrive("entry-2", "entry.monthly_expired", "粤B20001")
    world.arrive("exit-1", "exit.temp_unpaid", "粤B10001")
    world.arrive("exit-2", "exit.temp_unpaid", "粤B10002")

    wait_until(lambda: world.outcome("exit.temp_unpaid", "粤B10001") is not None, what="page payer")
    paid = world.outcome("exit.temp_unpaid", "粤B10001")
    assert paid is not None
    assert paid.result == "paid", paid
    assert Order.objects.get(plate="粤B10001").state == OrderState.PAID
    assert Stay.objects.get(plate="粤B10001").exited_at is not None  # the gate opened: it left

    wait_until(lambda: world.outcome("entry.unplated") is not None, what="unplated entry")
    entered = world.outcome("entry.unplated")
    assert entered is not None
    assert entered.result == "entered", entered
    ticket = UnplatedTicket.objects.get(lot=lot)
    assert ticket.phone == entered.detail
    assert ticket.stay.exited_at is None

    wait_until(lambda: world.outcome("entry.monthly_expired", "粤B20001") is not None, what="renew")
    renewed = world.outcome("entry.monthly_expired", "粤B20001")
    assert renewed is not None
    assert renewed.result == "paid", renewed
    monthly.refresh_from_db()
    assert monthly.valid_until > ended  # renewed from its end date
    assert Stay.objects.get(plate="粤B20001").exited_at is None  # let in as a pass holder

    wait_until(lambda: world.outcome("exit.temp_unpaid", "粤B10002") is not None, what="declined")
    declined = world.outcome("exit.temp_unpaid", "粤B10002")
    assert declined is not None
    assert declined.result == "paid", declined
    assert "declined" in declined.detail
    assert Order.objects.filter(plate="粤B10002", state=OrderState.PAID).count() == 1

    # the unplated car leaves three hours later: its driver finds the ticket by phone and pays
    Stay.objects.filter(pk=ticket.stay_id).update(entered_at=timezone.now() - timedelta(hours=3))
    world.arrive("exit-1", "exit.unplated", None)
    # a temp car whose driver confirms a payment code on the phone; one that does nothing
    world.arrive("exit-2", "exit.temp_unpaid", "粤B10004")
    wait_until(lambda: world.outcome("exit.unplated") is not None, what="unplated exit")
    left = world.outcome("exit.unplated")
    assert left is not None
    assert left.result == "paid", left
    ticket.stay.refresh_from_db()
    assert ticket.stay.exited_at is not None
    assert Order.objects.get(ticket=ticket).state == OrderState.PAID

    wait_until(lambda: world.outcome("exit.temp_unpaid", "粤B10004") is not None, what="slow code")
    slow = world.outcome("exit.temp_unpaid", "粤B10004")
    assert slow is not None
    assert slow.result == "paid", slow
    # a driver pays on the lot page before walking to the car, then drives out within the grace
    assert owing_car(0.0) in {("caike", "粤B10003"), ("caike", "粤B10005")}  # unpaid, inside
    prepaid = world.loop.run(world.drivers.prepay(world.base_url, "caike", "粤B10005"))
    assert prepaid.result == "paid", prepaid
    world.arrive("exit-1", "exit.temp_paid", "粤B10005")
    wait_until(lambda: world.outcome("exit.temp_paid", "粤B10005") is not None, what="prepaid")
    out = world.outcome("exit.temp_paid", "粤B10005")
    assert out is not None
    assert out.result == "opened", out
    assert Stay.objects.get(plate="粤B10005").exited_at is not None

    world.arrive("exit-2", "exit.temp_unpaid", "粤B10003")
    visit = GateVisit.objects.get(plate="粤B10003")
    wait_until(
        lambda: visit.pk in {v.pk for v in held_up(timezone.now())},
        what="the idle driver's car on the outbound list",
    )
    assert not Order.objects.filter(plate="粤B10003").exists()
    held = {v.pk for v in held_up(timezone.now())}
    assert held == {visit.pk}  # only the car whose driver did nothing

    # the demo's book-keeping: today's reconciliation agrees with what the drivers paid
    assert reconcile_today() > 0
    books = Reconciliation.objects.filter(lot=lot, day=business_day(timezone.now()))
    paid = Order.objects.filter(lot=lot, state=OrderState.PAID)
    assert sum(r.ours_count for r in books) == paid.count() == 6  # 4 temp, unplated, renewal
    assert sum(r.theirs_count for r in books) == paid.count()
    assert sum(r.ours_total for r in books) == sum(o.amount for o in paid)
    assert [r.differences for r in books] == [0] * len(books)
