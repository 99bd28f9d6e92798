"""The demo's traffic: cars arrive at the demo city's gates, and their drivers behave.

Cars are chosen so that every gate scenario of the manual (scenarios.md §1)
comes round within a few minutes: a round-robin over the scenarios picks, for
each, a lot and a car in the right state (a valid pass, a pass expired for 5
days, a stranger at a lot that refuses visitors, a shared-space group that is
full, a temp car that owes, an unplated car, …). Each arrival is a real
camera push in the gate camera's vendor format, posted to the server's device
endpoint. With ``drivers`` (``eppark.sim.drivers``, as in the demo) each car's
driver reacts to what the robot shows: scans its QR code and pays or registers
on the phone, shows a payment code, or does nothing; a gate has one car in
front of it at a time. Without them, a driver asked to do something gives up
after a while and backs away: the simulated robot's loop detector reports the
car gone and the visit says so.

``seed_cars_inside`` puts a realistic set of cars inside each lot when the
demo starts (pass holders, including some whose pass has since expired, and
temp cars that entered hours ago, unplated cars that registered at the entry
QR), so exits have something to do.
"""

from __future__ import annotations

import asyncio
import logging
import random
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from eppark.devices.keys import key_digest
from eppark.devices.lpr import ADAPTERS, Vendor
from eppark.devices.models import Camera
from eppark.domain.billing import temp_plate
from eppark.domain.decide import PassStatus
from eppark.domain.plates import LETTERS, PROVINCES
from eppark.lots.models import Gate, Lot
from eppark.orders.models import Order, OrderState
from eppark.passes.models import MonthlyPass, PassPlate
from eppark.passes.standing import standing_q
from eppark.provisioning.demo_city import demo_camera_keys
from eppark.sim.cameras import build_push
from eppark.sim.robot import SimRobot

if TYPE_CHECKING:
    from eppark.sim.drivers import Drivers, Watch
from eppark.stays.models import EnteredAs, GateVisit, Resolution, Stay, UnplatedTicket

log = logging.getLogger(__name__)
DAY = timedelta(days=1)

# The scenarios the traffic cycles through, in the order they come round.
SCENARIOS = (
    "entry.monthly_valid",
    "entry.temp_allowed",
    "exit.temp_paid",
    "entry.unplated",
    "exit.monthly_valid",
    "entry.monthly_expired",
    "exit.temp_unpaid",
    "entry.temp_forbidden",
    "exit.monthly_expired_grace",
    "entry.shared_full",
    "exit.unplated",
    "exit.monthly_expired",
    "exit.shared_full_unpaid",
    "exit.monthly_lapsed",
    "exit.no_entry_record",
)


@dataclass(frozen=True)
class Arrival:
    """A car about to reach a gate: which camera sees it, with which plate, for what scenario."""

    scenario: str
    camera_id: int
    vendor: Vendor
    key: str
    serial: str
    plate: str | None
    robot_code: str | None
    lot: str = ""


def _random_plate(rng: random.Random) -> str:
    letters = LETTERS
    tail = "".join(rng.choice("0123456789" * 3 + letters) for _ in range(5))
    return f"{rng.choice('粤' * 8 + PROVINCES)}{rng.choice(letters)}{tail}"


def _inside(lot: Lot) -> set[str]:
    return set(Stay.objects.filter(lot=lot, exited_at__isnull=True).values_list("plate", flat=True))


def _plates(passes: Any) -> list[str]:
    return list(PassPlate.objects.filter(monthly_pass__in=passes).values_list("plate", flat=True))


def _pass_states(lot: Lot, now: datetime) -> dict[str, Any]:
    passes = MonthlyPass.objects.filter(lot=lot)
    settings = [(lot.expired_grace_days, lot.expired_payable_days)]
    return {
        name: passes.filter(standing_q(status, now, settings))
        for name, status in (
            ("valid", PassStatus.VALID),
            ("grace", PassStatus.EXPIRED_GRACE),
            ("payable", PassStatus.EXPIRED_PAYABLE),
            ("lapsed", PassStatus.LAPSED),
        )
    }


def seed_cars_inside(now: datetime, seed: int = 7) -> int:
    """Park cars in every lot that has none inside: pass holders and temp cars; how many."""
    rng = random.Random(seed)
    created = 0
    for lot in Lot.objects.all():
        if Stay.objects.filter(lot=lot, exited_at__isnull=True).exists():
            continue
        entry = Gate.objects.filter(lot=lot, direction="entry").first()
        states = _pass_states(lot, now)
        for state, count, entered_days in (
            ("valid", 6, 1),
            ("grace", 2, 5),
            ("payable", 2, 9),
            ("lapsed", 2, 20),
        ):
            for monthly in states[state].order_by("pk")[:count]:
                plate = monthly.plates.order_by("plate").first()
                if plate is None or monthly.plates.count() > monthly.spaces:
                    continue  # shared groups are left to the traffic
                entered = max(monthly.valid_from, now - timedelta(days=entered_days))
                if entered > monthly.valid_until:
                    entered = monthly.valid_until - timedelta(hours=2)
                Stay.objects.create(
                    lot=lot,
                    plate=plate.plate,
                    entered_as=EnteredAs.PASS,
                    entered_at=entered,
                    entry_gate=entry,
                    monthly_pass=monthly,
                )
                created += 1
        if not lot.temp_entry_confirmation:
            created += _park_shared_group_over(lot, states["valid"], entry, now)
        for _ in range(6):
            Stay.objects.create(
                lot=lot,
                plate=_random_plate(rng),
                entered_as=EnteredAs.TEMP,
                entered_at=now - timedelta(minutes=rng.randint(90, 600)),
                entry_gate=entry,
            )
            created += 1
        if entry is not None:
            created += _park_unplated(rng, lot, entry, now, 2)
    return created


def _park_unplated(rng: random.Random, lot: Lot, entry: Gate, now: datetime, count: int) -> int:
    """Unplated cars that registered at the entry QR hours ago (their drivers know the phone)."""
    for _ in range(count):
        entered = now - timedelta(minutes=rng.randint(90, 600))
        plate = temp_plate(UnplatedTicket.objects.filter(lot=lot).count() + 1)
        stay = Stay.objects.create(
            lot=lot,
            plate=plate,
            entered_as=EnteredAs.UNPLATED,
            entered_at=entered,
            entry_gate=entry,
        )
        visit = GateVisit.objects.create(
            gate=entry,
            lot=lot,
            plate="",
            arrived_at=entered,
            scenario="entry.unplated",
            decision={},
            expected_action="unplated_entry_scan",
            opened=True,
            resolved_at=entered,
            resolution=Resolution.OPENED,
            stay=stay,
        )
        phone = f"1{rng.choice('3578')}{rng.randint(0, 999_999_999):09d}"
        UnplatedTicket.objects.create(
            lot=lot, temp_plate=plate, phone=phone, stay=stay, entry_visit=visit
        )
    return count


def _park_shared_group_over(lot: Lot, valid: Any, entry: Gate | None, now: datetime) -> int:
    """Fill one shared-space group's spaces and add one of its cars as temp (it will owe)."""
    for monthly in valid.order_by("pk"):
        plates = sorted(monthly.plates.values_list("plate", flat=True))
        if len(plates) <= monthly.spaces:
            continue
        for index, plate in enumerate(plates[: monthly.spaces + 1]):
            as_pass = index < monthly.spaces
            Stay.objects.create(
                lot=lot,
                plate=plate,
                entered_as=EnteredAs.PASS if as_pass else EnteredAs.TEMP,
                entered_at=now - timedelta(hours=5 if as_pass else 3),
                entry_gate=entry,
                monthly_pass=monthly,
            )
        return int(monthly.spaces) + 1
    return 0


class NoCar(Exception):
    """This lot has no car for the scenario right now."""


class Planner:
    """Picks, for a scenario, a lot, a gate camera and a car that make it happen."""

    def __init__(
        self,
        rng: random.Random,
        clock: Callable[[], datetime] = timezone.now,
        busy: Callable[[], set[str]] = set,
    ) -> None:
        self.rng = rng
        self.clock = clock
        self.busy = busy  # robots whose gate has a car in front already
        # the database keeps only the keys' digests: the demo city's own file knows the keys
        self.keys = {key_digest(key): key for key in demo_camera_keys()}

    def plan(self, scenario: str) -> Arrival | None:
        """An arrival for ``scenario``, or None when the city has no car for it right now."""
        close_old_connections()
        try:
            return self._plan(scenario)
        finally:
            connection.close()  # a worker thread: give the connection back

    def _plan(self, scenario: str) -> Arrival | None:
        direction = scenario.split(".")[0]
        now = self.clock()
        lots = list(Lot.objects.all())
        self.rng.shuffle(lots)
        for lot in lots:
            try:
                plate = self._plate(scenario, lot, now)
            except NoCar:
                continue
            camera = self._camera(lot, direction)
            if camera is None:
                continue
            robot = getattr(camera.gate, "robot", None) if camera.gate else None
            vendor: Vendor = camera.vendor  # type: ignore[assignment]
            return Arrival(
                scenario,
                camera.pk,
                vendor,
                self.keys[camera.key_digest or ""],
                camera.serial,
                plate or None,
                robot.code if robot else None,
                lot.code,
            )
        return None

    def _camera(self, lot: Lot, direction: str) -> Camera | None:
        busy = self.busy()
        cameras = [
            camera
            for camera in Camera.objects.filter(
                lot=lot, gate__direction=direction, vendor__in=list(ADAPTERS)
            ).select_related("gate__robot")
            if camera.key_digest in self.keys  # a camera whose key the demo knows
            and getattr(getattr(camera.gate, "robot", None), "code", None) not in busy
        ]
        return self.rng.choice(cameras) if cameras else None

    def _plate(self, scenario: str, lot: Lot, now: datetime) -> str | None:
        """The plate for the scenario at ``lot`` (None: unplated); NoCar when there is none."""
        inside = _inside(lot)
        states = _pass_states(lot, now)
        single = [p for p in states["valid"] if p.plates.count() <= p.spaces]
        confirm = lot.temp_entry_confirmation
        if scenario == "entry.unplated":
            return None
        if scenario == "exit.unplated":  # an unplated car that came in by its entry QR
            unplated = Stay.objects.filter(lot=lot, exited_at__isnull=True, entered_as="unplated")
            if not unplated.exists():
                raise NoCar(lot.code)
            return None
        if scenario == "entry.monthly_valid":
            return self._pick([p for p in _plates(single) if p not in inside])
        if scenario == "entry.monthly_expired":
            return self._pick(
                [
                    p
                    for p in _plates(states["grace"]) + _plates(states["payable"])
                    if p not in inside
                ]
            )
        if scenario == "entry.temp_allowed":
            return self._unless(confirm, _random_plate(self.rng))
        if scenario == "entry.temp_forbidden":
            return self._unless(not confirm, _random_plate(self.rng))
        if scenario == "entry.shared_full":
            return self._shared_full(lot, states["valid"], inside, confirm)
        if scenario == "exit.monthly_valid":
            return self._pick([p for p in _plates(states["valid"]) if p in inside])
        if scenario == "exit.monthly_expired_grace":
            return self._pick([p for p in _plates(states["grace"]) if p in inside])
        if scenario == "exit.monthly_expired":
            return self._pick([p for p in _plates(states["payable"]) if p in inside])
        if scenario == "exit.monthly_lapsed":
            return self._pick([p for p in _plates(states["lapsed"]) if p in inside])
        temp_inside = Stay.objects.filter(lot=lot, exited_at__isnull=True, entered_as="temp")
        if scenario == "exit.temp_paid":  # inside the free period, or paid inside the lot
            paid = Order.objects.filter(
                state=OrderState.PAID, paid_at__gte=now - timedelta(minutes=10), stay__isnull=False
            ).values("stay_id")
            recent = temp_inside.filter(
                Q(entered_at__gte=now - timedelta(minutes=10)) | Q(pk__in=paid)
            )
            return self._pick(list(recent.values_list("plate", flat=True)))
        if scenario == "exit.temp_unpaid":
            owing = temp_inside.filter(entered_at__lte=now - timedelta(hours=1))
            plates = set(_plates(MonthlyPass.objects.filter(lot=lot)))
            return self._pick([p for p in owing.values_list("plate", flat=True) if p not in plates])
        if scenario == "exit.shared_full_unpaid":
            groups = _plates(states["valid"])
            return self._pick(
                list(temp_inside.filter(plate__in=groups).values_list("plate", flat=True))
            )
        if scenario == "exit.no_entry_record":
            return _random_plate(self.rng)
        raise NoCar(scenario)

    def _unless(self, refused: bool, plate: str) -> str:
        if refused:
            raise NoCar(plate)
        return plate

    def _pick(self, plates: list[str]) -> str:
        if not plates:
            raise NoCar
        return str(self.rng.choice(sorted(plates)))

    def _shared_full(self, lot: Lot, valid: Any, inside: set[str], confirm: bool) -> str:
        """A group car whose group's spaces are taken; parks the others first if need be."""
        if not confirm:
            raise NoCar(lot.code)
        for monthly in valid.order_by("pk"):
            plates = sorted(monthly.plates.values_list("plate", flat=True))
            if len(plates) <= monthly.spaces:
                continue
            outside = [p for p in plates if p not in inside]
            parked = [p for p in plates if p in inside]
            if not outside:
                continue
            entry = Gate.objects.filter(lot=lot, direction="entry").first()
            for plate in outside[: max(0, monthly.spaces - len(parked))]:
                Stay.objects.create(
                    lot=lot,
                    plate=plate,
                    entered_as=EnteredAs.PASS,
                    entered_at=self.clock() - timedelta(hours=3),
                    entry_gate=entry,
                    monthly_pass=monthly,
                )
                outside.remove(plate)
            if outside:
                return str(outside[0])
        raise NoCar(lot.code)


class Traffic:
    """Cars arriving at the demo city's gates, one every ``interval`` seconds."""

    def __init__(
        self,
        base_url: str,
        robots: Mapping[str, SimRobot],
        *,
        interval: float = 6.0,
        seed: int = 11,
        patience: tuple[float, float] = (20.0, 120.0),
        drivers: Drivers | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.robots = robots
        self.interval = interval
        self.rng = random.Random(seed)
        self.drivers = drivers
        self.planner = Planner(self.rng, busy=lambda: drivers.busy if drivers else set())
        self.patience = patience
        self.plate_id = self.rng.randint(10_000, 90_000)
        self.sent: dict[str, int] = {}
        self._drivers: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Send cars until cancelled (their drivers are stopped with it)."""
        step = 0
        try:
            while True:
                scenario = SCENARIOS[step % len(SCENARIOS)]
                step += 1
                try:
                    plan = sync_to_async(self.planner.plan, thread_sensitive=False)
                    arrival = await plan(scenario)
                    if arrival is not None:
                        await self.arrive(arrival)
                except Exception:  # the demo goes on whatever one car does
                    log.exception("traffic: %s failed", scenario)
                await asyncio.sleep(self.interval * self.rng.uniform(0.6, 1.4))
        finally:
            await self.stop_drivers()

    async def stop_drivers(self) -> None:
        """Cancel the drivers still at a gate and wait for them."""
        tasks = list(self._drivers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def arrive(self, arrival: Arrival) -> int:
        """The car reaches the gate: the robot's loop senses it, the camera pushes its read."""
        robot = self.robots.get(arrival.robot_code or "")
        watch = self.drivers.watch(robot) if self.drivers and robot is not None else None
        if robot is not None and robot.online.is_set():
            await robot.loop(True)
        self.plate_id += 1
        push = build_push(
            arrival.vendor, arrival.serial, arrival.plate, timezone.now(), plate_id=self.plate_id
        )
        url = f"{self.base_url}/devices/lpr/{arrival.vendor}/{arrival.key}"
        if push.path:
            url += "/" + push.path
        status = await asyncio.to_thread(_post, url, push.body, push.content_type)
        self.sent[arrival.scenario] = self.sent.get(arrival.scenario, 0) + 1
        log.info("traffic: %s %s → %s", arrival.scenario, arrival.plate or "无牌", status)
        if robot is not None and self.drivers is not None and watch is not None:
            self.drivers.busy.add(robot.code)
            task = asyncio.create_task(self._attended(arrival, robot, watch))
            self._drivers.add(task)
            task.add_done_callback(self._drivers.discard)
        elif robot is not None:
            task = asyncio.create_task(self._driver(arrival, robot))
            self._drivers.add(task)
            task.add_done_callback(self._drivers.discard)
        return status

    async def _attended(self, arrival: Arrival, robot: SimRobot, watch: Watch) -> None:
        """The car's driver reacts to what the robot shows (``eppark.sim.drivers``)."""
        assert self.drivers is not None
        await self.drivers.attend(arrival, robot, watch)

    async def _driver(self, arrival: Arrival, robot: SimRobot) -> None:
        """A held-up driver gives up after a while and backs away; the loop reports it."""
        await asyncio.sleep(self.rng.uniform(*self.patience))
        waiting = await sync_to_async(_still_waiting, thread_sensitive=False)(
            arrival.camera_id, arrival.plate or ""
        )
        if waiting and robot.online.is_set():
            await robot.loop(False)


def _still_waiting(camera_id: int, plate: str) -> bool:
    close_old_connections()
    try:
        camera = Camera.objects.filter(pk=camera_id).first()
        if camera is None or camera.gate_id is None:
            return False
        return GateVisit.objects.filter(
            Q(plate=plate), gate_id=camera.gate_id, resolved_at__isnull=True
        ).exists()
    finally:
        connection.close()


def _post(url: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
