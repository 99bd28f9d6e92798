"""The demo's drivers: people at a gate who react to what its robot shows, the way drivers do.

A car reaches a gate (``eppark.sim.traffic``); its driver watches the robot's
screen. When it shows a QR code, the driver either

- scans it with the phone and follows the page over real HTTP
  (``eppark.sim.phone``): an unplated car's entry (手机号 → 确认进场), an
  unplated car's exit (手机号 → 立即支付), a temp fee or a pass renewal
  (立即支付 → the sandbox's cashier → 确认支付 → the result page, 支付成功);
- or, where a fee is due, shows a payment code (付款码) to the robot's
  scanner: the simulated robot publishes ``qr_scanned``. In the sandbox the
  code's last digit decides: most pay at once, some need the driver's
  confirmation first (USERPAYING, ``1``), some are declined (余额不足, ``2``:
  the driver then pays another way), some error although charged (``3``);
- or presses the robot's call button and waits for the agent (a few minutes):
  the gate opening, or a QR code the agent sends to the screen, which the
  driver then follows (so every desk scenario comes round in the demo);
- or does nothing at all: after the manual's minute the gate is on the agents'
  outbound call list, and in the end the driver backs away.

Once the gate opens the car drives through (the loop reports it gone).
Drivers with nothing to do (the gate opened, or a refusal on the screen) wait
a little and back away when the gate stays shut, as before; one asked to call
an agent (no entry record), and most of those refused with nothing to do (a
stranger, a full group), press the call button and wait for the agent.

Now and then a driver inside a lot pays on the lot page (``/lot/<code>/``,
场内预付) before walking to the car; the traffic then brings that car to an exit
within the exit grace (exit.temp_paid).

The demo writes one JSON line per driver (``var/sim-drivers.jsonl``): the
scenario, the habit, and what came of it (paid, entered, free, opened, idle,
left, stuck with what the phone showed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, TextIO

import httpx
from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection
from django.utils import timezone

from eppark.gateway.protocol import Screen
from eppark.sim import phone as phones
from eppark.sim.phone import Page, Phone
from eppark.sim.robot import SimRobot

if TYPE_CHECKING:
    from eppark.sim.traffic import Arrival

log = logging.getLogger(__name__)

PAID = "支付成功"
PAY = "立即支付"
CONFIRM_PAY = "确认支付"
PHONE = "手机号"
LET_IN = "确认进场"
PLATE = "车牌号"  # the lot page's plate field
CALL = "呼叫"  # the robot asks the driver to press its call button (no entry record)
OPEN_GATE = "开闸出场"  # nothing due (free period, paid before): the page lets the car out


class Habit(StrEnum):
    """What a driver does when the robot asks for something."""

    PAGE = "page"  # scans the QR code and follows the page
    CODE = "code"  # shows a payment code that pays at once
    CODE_SLOW = "code_slow"  # a code the driver must confirm on the phone first (USERPAYING)
    CODE_DECLINED = "code_declined"  # a code that is declined (余额不足): then pays another way
    CODE_CHARGED = "code_charged"  # a code whose payment errors although it was charged
    CALL = "call"  # presses the call button and waits for the agent (新版智能客服)
    IDLE = "idle"  # does nothing


CODES = (Habit.CODE, Habit.CODE_SLOW, Habit.CODE_DECLINED, Habit.CODE_CHARGED)

FEE_DUE = frozenset({"exit.temp_unpaid", "exit.shared_full_unpaid", "exit.monthly_lapsed"})
"""Scenarios whose QR code asks for a temp fee: the driver may show a payment code instead."""
PAGE_ONLY = frozenset(
    {"entry.unplated", "exit.unplated", "entry.monthly_expired", "exit.monthly_expired"}
)
"""Scenarios whose QR code leads to a page only (a phone number, a renewal option)."""

FEE_HABITS: tuple[tuple[Habit, int], ...] = (
    (Habit.PAGE, 40),
    (Habit.CODE, 20),
    (Habit.CODE_SLOW, 10),
    (Habit.CODE_DECLINED, 10),
    (Habit.CODE_CHARGED, 5),
    (Habit.CALL, 10),
    (Habit.IDLE, 10),
)
PAGE_HABITS: tuple[tuple[Habit, int], ...] = ((Habit.PAGE, 75), (Habit.CALL, 15), (Habit.IDLE, 10))
REFUSED_CALL_SHARE = 0.6
"""Of the drivers refused with nothing to do (a stranger, a full group), how many call an agent."""

BROWSERS: tuple[tuple[str, int], ...] = (
    (phones.SAFARI, 2),
    (phones.WECHAT, 4),
    (phones.ALIPAY, 3),
)
"""Where drivers open a QR code to pay: a phone's browser, or inside WeChat or Alipay (the
sandbox then plays that app's provider). An unplated car's driver uses the browser and a phone
number, the number they give again at the exit."""

LAST_DIGIT = {
    Habit.CODE: "0456789",
    Habit.CODE_SLOW: "1",
    Habit.CODE_DECLINED: "2",
    Habit.CODE_CHARGED: "3",
}


def payment_code(rng: random.Random, channel: str, last: str) -> str:
    """A WeChat (18 digits, 10–15…) or Alipay (16–24 digits, 25–30…) 付款码 ending in ``last``."""
    if channel == "wechat":
        head, length = rng.choice(("10", "11", "12", "13", "14", "15")), 18
    else:
        head, length = rng.choice(("25", "26", "27", "28", "29", "30")), rng.randint(16, 24)
    body = "".join(rng.choice("0123456789") for _ in range(length - len(head) - 1))
    return head + body + last


def mobile(rng: random.Random) -> str:
    """A mainland mobile number."""
    return f"1{rng.choice('3578')}{rng.randint(0, 999_999_999):09d}"


@dataclass(frozen=True)
class Watch:
    """What the robot showed and how often it had opened just before the car arrived."""

    cmd_id: str | None
    opens: int
    at: datetime


@dataclass(frozen=True)
class Outcome:
    """What became of one driver."""

    scenario: str
    robot: str
    plate: str
    habit: str
    result: str  # paid, entered, opened, left, idle, stuck, …
    detail: str = ""


class Drivers:
    """Every driver of the demo's traffic; ``attend`` plays one car's driver at a gate."""

    def __init__(
        self,
        *,
        rng: random.Random | None = None,
        choose: Callable[[Arrival], Habit] | None = None,
        idle_patience: tuple[float, float] = (90.0, 240.0),
        patience: tuple[float, float] = (20.0, 60.0),
        agent_patience: float = 240.0,
        screen_timeout: float = 15.0,
        open_timeout: float = 60.0,
        out: TextIO | None = None,
        browsers: tuple[tuple[str, int], ...] = BROWSERS,
    ) -> None:
        self.rng = rng or random.Random(23)
        self.choose = choose or self._choose
        self.idle_patience = idle_patience
        self.patience = patience
        self.agent_patience = agent_patience
        self.screen_timeout = screen_timeout
        self.open_timeout = open_timeout
        self.out = out  # one JSON line per driver, when given
        self.browsers = browsers
        self.busy: set[str] = set()  # robots with a driver in front of them
        self.outcomes: deque[Outcome] = deque(maxlen=1000)
        self.counts: Counter[tuple[str, str]] = Counter()  # (scenario, result) → how many
        self._phones_in_use: set[str] = set()

    @staticmethod
    def watch(robot: SimRobot) -> Watch:
        """Note the robot's screen and opens before the car's plate is read."""
        return Watch(robot.screen.cmd_id, len(robot.opened), timezone.now())

    def _choose(self, arrival: Arrival) -> Habit:
        table = FEE_HABITS if arrival.scenario in FEE_DUE else PAGE_HABITS
        habits = [habit for habit, _weight in table]
        weights = [weight for _habit, weight in table]
        return self.rng.choices(habits, weights)[0]

    async def attend(self, arrival: Arrival, robot: SimRobot, watch: Watch) -> Outcome:
        """Play the driver of ``arrival`` at ``robot`` until the car is through or gone."""
        self.busy.add(robot.code)
        try:
            outcome = await self._attend(arrival, robot, watch)
        except Exception as error:  # the demo goes on whatever one driver meets
            log.exception("driver at %s (%s) failed", robot.code, arrival.scenario)
            outcome = self._outcome(arrival, robot, "-", "error", repr(error)[:200])
            await self._back_away(arrival, robot, self.patience)
        finally:
            self.busy.discard(robot.code)
        self._record(outcome)
        log.info(
            "driver %s at %s: %s → %s %s",
            outcome.plate or "无牌",
            outcome.robot,
            outcome.habit,
            outcome.result,
            outcome.detail,
        )
        return outcome

    async def _attend(self, arrival: Arrival, robot: SimRobot, watch: Watch) -> Outcome:
        shown = await self._new_screen(robot, watch)
        if robot.opened[watch.opens :]:
            await self._drive_through(robot)
            return self._outcome(arrival, robot, "-", "opened")
        display = shown.display if shown is not None else None
        if (
            display is None
            or display.kind != "qr"
            or not display.qr
            or arrival.scenario not in FEE_DUE | PAGE_ONLY
        ):
            # nothing the driver can do here (refused, no record, or the gate opens after
            # the prompt): drive through if it opens, else back away after a while
            if await self._opened(arrival, robot, watch, timeout=5.0):
                await self._drive_through(robot)
                return self._outcome(arrival, robot, "-", "opened")
            asked_to_call = shown is not None and CALL in (shown.voice or "")
            if asked_to_call or (shown is not None and self.rng.random() < REFUSED_CALL_SHARE):
                return await self._call_agent(arrival, robot, shown)
            await self._back_away(arrival, robot, self.patience)
            return self._outcome(arrival, robot, "-", "left")
        habit = self.choose(arrival)
        if habit is Habit.CALL:
            return await self._call_agent(arrival, robot, shown)
        if habit is Habit.IDLE:
            await self._back_away(arrival, robot, self.idle_patience)
            return self._outcome(arrival, robot, habit, "idle")
        await asyncio.sleep(self.rng.uniform(1.0, 4.0))  # takes out the phone
        if habit in CODES:
            result, detail = await self._show_code(arrival, robot, watch, habit, display.qr)
        else:
            result, detail = await self._follow_page(arrival, display.qr)
        done = ("paid", "entered", "free")
        if result in done and await self._opened(arrival, robot, watch, self.open_timeout):
            await self._drive_through(robot)
            return self._outcome(arrival, robot, habit, result, detail)
        if result in done:
            detail = f"{detail} but the gate stayed shut".strip()
            result = f"{result}, gate shut"
        await self._back_away(arrival, robot, self.patience)
        return self._outcome(arrival, robot, habit, result, detail)

    async def _call_agent(self, arrival: Arrival, robot: SimRobot, shown: Screen | None) -> Outcome:
        """Press the call button and wait for the agent: the gate opening, or a new screen
        (a QR code the agent sent: the driver follows it; the ID prompt: the robot's ID
        camera takes the photos the agent asks for)."""
        if not robot.online.is_set():
            await self._back_away(arrival, robot, self.patience)
            return self._outcome(arrival, robot, Habit.CALL, "left", "robot offline")
        mark = Watch(robot.screen.cmd_id, len(robot.opened), timezone.now())
        await robot.press_call_button()  # the agent's business from here
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.agent_patience
        followed: set[str] = set()
        while loop.time() < deadline:
            if len(robot.opened) > mark.opens:
                await self._drive_through(robot)
                return self._outcome(arrival, robot, Habit.CALL, "opened by the agent")
            screen = robot.screen
            display = screen.display
            if (
                screen.cmd_id != mark.cmd_id
                and display is not None
                and display.kind == "qr"
                and display.qr
                and display.qr not in followed
            ):
                followed.add(display.qr)
                await asyncio.sleep(self.rng.uniform(1.0, 3.0))
                result, _detail = await self._follow_page(arrival, display.qr)
                if result in ("paid", "entered", "free") and await self._opened(
                    arrival, robot, mark, self.open_timeout
                ):
                    await self._drive_through(robot)
                    return self._outcome(arrival, robot, Habit.CALL, f"agent's code: {result}")
            await asyncio.sleep(0.2)
        await self._back_away(arrival, robot, (0.0, 0.0))
        return self._outcome(arrival, robot, Habit.CALL, "called, left")

    def _record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.counts[(outcome.scenario, outcome.result)] += 1
        if self.out is not None:
            line = {"at": timezone.now().isoformat(timespec="seconds"), **asdict(outcome)}
            print(json.dumps(line, ensure_ascii=False), file=self.out, flush=True)

    def _outcome(
        self, arrival: Arrival, robot: SimRobot, habit: str, result: str, detail: str = ""
    ) -> Outcome:
        plate = arrival.plate or ""
        return Outcome(arrival.scenario, robot.code, plate, str(habit), result, detail)

    # --- the robot ---------------------------------------------------------------------------

    async def _new_screen(self, robot: SimRobot, watch: Watch) -> Screen | None:
        """The screen the robot shows for this car (None if nothing came in time)."""
        deadline = asyncio.get_running_loop().time() + self.screen_timeout
        while asyncio.get_running_loop().time() < deadline:
            screen = robot.screen
            if screen.cmd_id is not None and screen.cmd_id != watch.cmd_id:
                await asyncio.sleep(0.3)  # an open may follow the prompt (expired grace)
                return robot.screen
            await asyncio.sleep(0.1)
        return None

    @staticmethod
    async def _opened(arrival: Arrival, robot: SimRobot, watch: Watch, timeout: float) -> bool:
        """Wait until the barrier rises for this car: the robot's relay, or the camera's own."""
        deadline = asyncio.get_running_loop().time() + timeout
        checked = 0.0
        while (now := asyncio.get_running_loop().time()) < deadline:
            if len(robot.opened) > watch.opens:
                return True
            if now - checked >= 0.5:  # a gate opened by its camera: the driver sees it rise
                checked = now
                opened = sync_to_async(_visit_opened, thread_sensitive=False)
                if await opened(arrival.camera_id, arrival.plate or "", watch.at):
                    return True
            await asyncio.sleep(0.1)
        return False

    async def _drive_through(self, robot: SimRobot) -> None:
        """The car passes the barrier: the loop reports it gone."""
        await asyncio.sleep(self.rng.uniform(1.0, 3.0))
        if robot.online.is_set():
            await robot.loop(False)

    async def _back_away(
        self, arrival: Arrival, robot: SimRobot, patience: tuple[float, float]
    ) -> None:
        """The driver waits, then backs away if the gate is still shut for them."""
        from eppark.sim.traffic import _still_waiting

        await asyncio.sleep(self.rng.uniform(*patience))
        waiting = await sync_to_async(_still_waiting, thread_sensitive=False)(
            arrival.camera_id, arrival.plate or ""
        )
        if waiting and robot.online.is_set():
            await robot.loop(False)

    # --- payment codes -----------------------------------------------------------------------

    async def _show_code(
        self, arrival: Arrival, robot: SimRobot, watch: Watch, habit: Habit, qr_url: str
    ) -> tuple[str, str]:
        """Show a payment code to the scanner; a declined one is followed by another way."""
        channel = self.rng.choice(("wechat", "alipay"))
        code = payment_code(self.rng, channel, self.rng.choice(LAST_DIGIT[habit]))
        before = robot.screen.cmd_id
        await robot.scan_qr(code)
        if habit is not Habit.CODE_DECLINED:
            return ("paid", f"{channel} code …{code[-4:]}")
        # 余额不足: the robot says so; the driver tries again another way
        await self._screen_changes(robot, before, timeout=20.0)
        await asyncio.sleep(self.rng.uniform(2.0, 5.0))
        if self.rng.random() < 0.5:
            again = payment_code(self.rng, channel, "0")
            await robot.scan_qr(again)
            return ("paid", f"declined …{code[-4:]}, then code …{again[-4:]}")
        result, detail = await self._follow_page(arrival, qr_url)
        return (result, f"declined …{code[-4:]}, then the page: {detail}".strip())

    @staticmethod
    async def _screen_changes(robot: SimRobot, cmd_id: str | None, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline and robot.screen.cmd_id == cmd_id:
            await asyncio.sleep(0.1)

    # --- the phone -----------------------------------------------------------------------------

    async def _follow_page(self, arrival: Arrival, url: str) -> tuple[str, str]:
        """Scan the QR code with the phone and do what the pages ask."""
        number = mobile(self.rng)
        if arrival.scenario == "exit.unplated":
            known = await self._unplated_phone(arrival.lot)
            if known is None:
                return ("stuck", "no unplated ticket of this lot to leave with")
            number = known
        browser_kind = phones.SAFARI
        if arrival.scenario not in ("entry.unplated", "exit.unplated"):
            kinds = [kind for kind, _weight in self.browsers]
            browser_kind = self.rng.choices(kinds, [w for _kind, w in self.browsers])[0]
        self._phones_in_use.add(number)
        try:
            async with Phone(browser_kind, rng=self.rng) as browser:
                return await self._walk(browser, await browser.open(url), number)
        finally:
            self._phones_in_use.discard(number)

    async def _walk(self, browser: Phone, page: Page, number: str) -> tuple[str, str]:
        """Follow the pages: phone number, let in, pay, cashier, result."""
        confirmed = False
        for _step in range(40):
            log.debug("driver's phone: %s %s", page.url, page.summary())
            if page.status >= 400:
                return ("stuck", page.summary())
            entry = page.form_with_button(LET_IN)
            if entry is not None:
                form, button = entry
                field = form.field_labelled(PHONE)
                typed = {field.name: number} if field is not None else {}
                page = await browser.submit(page, form, button, typed)
                if page.status >= 400 or page.form_with_button(LET_IN) is not None:
                    return ("stuck", page.summary())
                return ("entered", number)
            free = page.form_with_button(OPEN_GATE)
            if free is not None:
                page = await browser.submit(page, *free)
                return ("free", "") if page.status < 400 else ("stuck", page.summary())
            cashier = page.form_with_button(CONFIRM_PAY)
            if cashier is not None:
                await asyncio.sleep(self.rng.uniform(0.5, 2.0))  # reads the amount
                page = await browser.submit(page, *cashier)
                confirmed = True
                continue
            pay = page.form_with_button(PAY)
            if pay is not None:
                page = await browser.submit(page, *pay)
                continue
            asks = page.form_with_field(PHONE)
            if asks is not None:
                form, field = asks
                page = await browser.submit(
                    page, form, form.buttons[0] if form.buttons else None, {field.name: number}
                )
                continue
            if page.says(PAID):  # the result page (a page asking to pay says it too: 支付成功后…)
                return ("paid", "")
            link = page.link(PAY) or page.link(CONFIRM_PAY)
            if link is not None:
                page = await browser.open(link)
                continue
            again = page.refresh_url()
            if confirmed or again is not None:
                await asyncio.sleep(1.0)  # the result page waits for the provider's word
                page = await browser.open(again or page.url)
                continue
            return ("stuck", page.summary())
        return ("stuck", f"still not paid: {page.summary()}")

    # --- paying inside the lot (场内预付) ------------------------------------------------------

    async def prepay(self, base_url: str, lot_code: str, plate: str) -> Outcome:
        """A driver pays on the lot page (``/lot/<code>/``) before walking to the car."""
        browser_kind = self.rng.choices(
            [kind for kind, _weight in self.browsers], [w for _kind, w in self.browsers]
        )[0]
        try:
            async with Phone(browser_kind, rng=self.rng) as browser:
                page = await browser.open(f"{base_url.rstrip('/')}/lot/{lot_code}/")
                asks = page.form_with_field(PLATE)
                if asks is None:
                    result, detail = "stuck", page.summary()
                else:
                    form, field = asks
                    button = form.buttons[0] if form.buttons else None
                    page = await browser.submit(page, form, button, {field.name: plate})
                    result, detail = await self._walk(browser, page, "")
        except httpx.HTTPError as error:
            result, detail = "stuck", repr(error)[:200]
        outcome = Outcome("lot.prepay", "-", plate, "page", result, detail)
        self._record(outcome)
        return outcome

    async def prepay_forever(self, base_url: str, every: float = 45.0) -> None:
        """Now and then a driver inside a lot pays for the stay before walking to the car."""
        while True:
            await asyncio.sleep(every * self.rng.uniform(0.5, 1.5))
            try:
                found = await sync_to_async(owing_car, thread_sensitive=False)(self.rng.random())
                if found is not None:
                    await self.prepay(base_url, *found)
            except Exception:  # the demo goes on whatever one driver meets
                log.exception("a driver paying inside the lot failed")

    async def _unplated_phone(self, lot_code: str) -> str | None:
        """The phone number of an unplated car inside ``lot_code`` (its driver remembers it)."""
        phones_inside = await sync_to_async(_unplated_phones, thread_sensitive=False)(lot_code)
        free = [p for p in phones_inside if p not in self._phones_in_use]
        return self.rng.choice(free) if free else None

    def summary(self) -> str:
        """How the drivers fared so far, one scenario a line."""
        lines = []
        for (scenario, result), count in sorted(self.counts.items()):
            lines.append(f"{scenario:28} {result:24} {count}")
        return "\n".join(lines)


def owing_car(pick: float) -> tuple[str, str] | None:
    """A temp car inside some lot that owes a fee and has not paid lately: (lot code, plate)."""
    from eppark.orders.models import Order, OrderState
    from eppark.passes.models import PassPlate
    from eppark.stays.models import EnteredAs, Stay

    close_old_connections()
    try:
        now = timezone.now()
        recently_paid = Order.objects.filter(  # (NOT IN with a NULL in it matches nothing)
            state=OrderState.PAID, paid_at__gte=now - timedelta(minutes=30), stay__isnull=False
        ).values("stay_id")
        cars = list(
            Stay.objects.filter(
                exited_at__isnull=True,
                entered_as=EnteredAs.TEMP,
                entered_at__lte=now - timedelta(hours=1),
            )
            .exclude(pk__in=recently_paid)
            .exclude(plate__in=PassPlate.objects.values("plate"))
            .order_by("pk")
            .values_list("lot__code", "plate")[:200]
        )
        return cars[int(pick * len(cars))] if cars else None
    finally:
        connection.close()


def _visit_opened(camera_id: int, plate: str, since: datetime) -> bool:
    """Whether the car's visit at the camera's gate (since ``since``) has had its gate opened."""
    from eppark.devices.models import Camera
    from eppark.stays.models import GateVisit

    close_old_connections()
    try:
        gate_id = Camera.objects.filter(pk=camera_id).values_list("gate_id", flat=True).first()
        if gate_id is None:
            return False
        return GateVisit.objects.filter(
            gate_id=gate_id, plate=plate, arrived_at__gte=since - timedelta(seconds=5), opened=True
        ).exists()
    finally:
        connection.close()


def _unplated_phones(lot_code: str) -> list[str]:
    """Phones of the unplated cars inside the lot (their tickets' stays are open)."""
    from eppark.stays.models import UnplatedTicket

    close_old_connections()
    try:
        return sorted(
            set(
                UnplatedTicket.objects.filter(lot__code=lot_code, stay__exited_at__isnull=True)
                .exclude(phone="")
                .values_list("phone", flat=True)
            )
        )
    finally:
        connection.close()


# --- the books -------------------------------------------------------------------------------


def reconcile_today(now: datetime | None = None) -> int:
    """Reconcile today so far: every lot with every provider in use; how many records."""
    from eppark.payments.reconcile import business_day, reconcile_day

    now = now or timezone.now()
    close_old_connections()
    try:
        return len(reconcile_day(business_day(now), now))
    finally:
        connection.close()


async def keep_books(every: float = 180.0, first: float = 30.0) -> None:
    """Reconcile today's payments every ``every`` seconds, as the back office shows them."""
    await asyncio.sleep(first)
    while True:
        try:
            await sync_to_async(reconcile_today, thread_sensitive=False)()
        except Exception:  # the demo goes on; the next round tries again
            log.exception("demo: the day's reconciliation failed")
        await asyncio.sleep(every)
