"""The outbox and the gateway over real brokers: delivery, acks, screens, outages, expiry."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from eppark.devices import outbox
from eppark.devices.credentials import hash_password
from eppark.devices.models import Camera, Command, CommandState, Robot, RobotEvent, RobotScreen
from eppark.gateway import store
from eppark.gateway.service import Gateway
from eppark.lots.models import Gate, Lot
from eppark.sim.cameras import build_push
from eppark.sim.robot import SimRobot
from eppark.stays.models import GateVisit, Resolution
from tests.integration import mqtt_fixtures
from tests.integration.factories import TARIFF, keyed_camera
from tests.integration.mqtt_fixtures import ROBOTS, TestBroker

mosquitto = mqtt_fixtures.mosquitto
embedded_broker = mqtt_fixtures.embedded_broker
any_broker = mqtt_fixtures.any_broker

pytestmark = pytest.mark.django_db(transaction=True)
WELCOME = {"voice": "欢迎光临", "display": {"kind": "face", "face": "smile"}, "light": "green"}
T = TypeVar("T")


class Loop:
    """An asyncio loop in a thread of its own, for the gateway and the simulated robots."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def close(self) -> None:
        # a client whose broker vanished may take a while to give up its socket
        self.run(mqtt_fixtures.cancel_tasks(timeout=10))
        mqtt_fixtures.close_loop_thread(self.loop, self.thread)


def wait_until(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Poll ``check`` until true (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


class World:
    """A lot whose two gates have robots EP-0001 (entry) and EP-0002 (exit), and a gateway."""

    def __init__(self, broker: TestBroker) -> None:
        self.broker = broker
        self.lot = Lot.objects.create(
            code="caike", name="彩科", capacity=50, tariff=TARIFF, temp_entry_confirmation=False
        )
        self.robots: dict[str, Robot] = {}
        self.cameras: dict[str, Camera] = {}
        for code, direction in (("EP-0001", "entry"), ("EP-0002", "exit")):
            gate = Gate.objects.create(
                lot=self.lot,
                code=direction,
                name=direction,
                direction=direction,
                opening_channel="robot",
            )
            self.robots[code] = Robot.objects.create(
                code=code,
                name=direction,
                lot=self.lot,
                gate=gate,
                mqtt_password_hash=hash_password(ROBOTS[code]),
            )
            self.cameras[code] = keyed_camera(
                f"k-{code}", vendor="hikvision", lot=self.lot, gate=gate, serial=f"sn-{code}"
            )
        self.loop = Loop()
        self.out = io.StringIO()
        self.gateway = Gateway(broker.url, password=broker.gateway_password, poll_interval=0.2)
        self.gateway_task = self.loop.start(self.gateway.run())
        self.sims = {
            code: SimRobot(code, ROBOTS[code], broker.url, out=self.out, max_backoff=0.5)
            for code in self.robots
        }
        for sim in self.sims.values():
            self.loop.start(sim.run())
        self.loop.run(self._online())
        self.client = Client()
        self.plate_id = 0

    async def _online(self) -> None:
        async with asyncio.timeout(20):
            await self.gateway.connected.wait()
            for sim in self.sims.values():
                await sim.online.wait()

    def read(self, code: str, plate: str | None) -> Any:
        """The robot's gate camera reads ``plate``: a real Hikvision push to the endpoint."""
        camera = self.cameras[code]
        self.plate_id += 1
        push = build_push("hikvision", camera.serial, plate, timezone.now(), plate_id=self.plate_id)
        response = self.client.post(
            f"/devices/lpr/hikvision/{camera.key}", data=push.body, content_type=push.content_type
        )
        assert response.status_code == 200, response.content
        return response

    def close(self) -> None:
        self.loop.close()


@pytest.fixture
def world(any_broker: TestBroker) -> Iterator[World]:
    built = World(any_broker)
    try:
        yield built
    finally:
        built.close()


def test_a_decision_reaches_the_robot_and_its_ack_becomes_the_screen(world: World) -> None:
    world.read("EP-0001", "粤B88888")  # a visitor: welcome and open, through the robot's relay
    robot = world.robots["EP-0001"]
    wait_until(
        lambda: Command.objects.filter(robot=robot, state=CommandState.DONE).count() == 2,
        what="present and open acked done",
    )
    sim = world.sims["EP-0001"]
    assert sim.opens == 1
    assert sim.screen.voice == "欢迎光临"
    screen = RobotScreen.objects.get(robot=robot)
    assert (screen.voice, screen.light, screen.display) == (
        "欢迎光临",
        "green",
        {"kind": "face", "face": "smile"},
    )
    out = io.StringIO()
    call_command("robot_state", "EP-0001", stdout=out)
    state = json.loads(out.getvalue())
    assert state["online"] is True
    assert (state["voice"], state["display"], state["light"]) == (
        sim.screen.voice,
        sim.screen.display.to_dict() if sim.screen.display else None,
        sim.screen.light,
    )

    def printed() -> set[str]:
        lines = [json.loads(line) for line in world.out.getvalue().splitlines()]
        return {p["cmd"] for p in lines if p["robot"] == "EP-0001"}

    wait_until(lambda: printed() == {"present", "open"}, what="the sim printed both commands")


def test_robot_status_and_events_reach_the_server(world: World) -> None:
    robot = world.robots["EP-0002"]
    wait_until(lambda: Robot.objects.get(pk=robot.pk).online, what="online status")
    world.read("EP-0002", "粤B66666")  # no entry record: the driver is asked to call an agent
    visit = GateVisit.objects.get(plate="粤B66666")
    assert visit.resolved_at is None
    world.loop.run(world.sims["EP-0002"].loop(False))  # the car backs away
    wait_until(
        lambda: GateVisit.objects.get(pk=visit.pk).resolution == Resolution.LEFT,
        what="visit resolved as left",
    )
    assert RobotEvent.objects.filter(robot=robot, type="loop").count() == 1


def test_broker_outage_loses_nothing_and_never_opens_late(world: World, settings: Any) -> None:
    settings.EPPARK_OPEN_TTL_S = 2
    plates = [f"粤B{n:05d}" for n in range(10)]
    world.read("EP-0001", plates[0])
    wait_until(
        lambda: Command.objects.filter(cmd="open", state=CommandState.DONE).exists(),
        what="the first open carried out and its done ack recorded",
    )
    assert world.sims["EP-0001"].opens == 1
    world.broker.stop()
    wait_until(lambda: not world.gateway.connected.is_set(), what="gateway notices the outage")
    for plate in plates[1:]:  # traffic goes on: every read is answered and recorded
        world.read("EP-0001", plate)
    assert GateVisit.objects.count() == len(plates)
    pending = Command.objects.filter(state=CommandState.PENDING)
    assert pending.filter(cmd="open").count() == len(plates) - 1
    time.sleep(2.5)  # let the opens' time-to-live pass while the broker is down
    world.broker.start()
    last_present = Command.objects.filter(cmd="present").order_by("-created_at").first()
    assert last_present is not None
    wait_until(
        lambda: Command.objects.get(pk=last_present.pk).state == CommandState.DONE,
        timeout=30,
        what="the latest prompt delivered after the outage",
    )
    wait_until(
        lambda: not Command.objects.filter(state__in=["pending", "sent"]).exists(),
        timeout=30,
        what="the outbox settles",
    )
    states = {
        (c.cmd, c.state)
        for c in Command.objects.filter(
            created_at__gt=last_present.created_at - timedelta(minutes=5)
        )
    }
    assert ("open", CommandState.EXPIRED) in states
    assert world.sims["EP-0001"].opens == 1  # no open ran late
    assert Command.objects.filter(cmd="open", state=CommandState.DONE).count() == 1
    assert world.sims["EP-0001"].screen.cmd_id == last_present.cmd_id
    # every command is accounted for: delivered, superseded by a newer prompt, or expired
    assert not Command.objects.exclude(state__in=["done", "expired"]).exists()


def test_the_outbox_wakes_the_gateway_on_commit(world: World) -> None:
    robot = world.robots["EP-0002"]
    from django.db import transaction

    with transaction.atomic():
        command = outbox.present(
            robot,
            {"voice": "一路平安", "display": {"kind": "face", "face": "smile"}, "light": "green"},
            timezone.now(),
        )
        time.sleep(0.5)
        assert Command.objects.get(pk=command.pk).state == CommandState.PENDING
    wait_until(
        lambda: Command.objects.get(pk=command.pk).state == CommandState.DONE,
        what="delivered after commit",
    )


def test_a_final_ack_lost_with_the_broker_is_asked_for_again(world: World) -> None:
    robot = world.robots["EP-0001"]
    sim = world.sims["EP-0001"]
    wait_until(lambda: Robot.objects.get(pk=robot.pk).online, what="online status")
    now = timezone.now()
    opened = outbox.open_by_robot(robot, now, reason="visitor")
    shown = outbox.present(robot, WELCOME, now)
    wait_until(
        lambda: Command.objects.filter(pk__in=[opened.pk, shown.pk], state="done").count() == 2,
        what="open and prompt carried out",
    )
    assert sim.opens == 1
    # their final acks die with the broker: the server gave up on the open, and thinks the
    # prompt is only accepted; a third command was sent but never reached the robot.
    # (Their expiry is pushed out of the running gateway's way: this test asks by hand.)
    expires = now + timedelta(minutes=5)
    Command.objects.filter(pk=opened.pk).update(
        state=CommandState.EXPIRED, acked_at=None, expires_at=expires
    )
    Command.objects.filter(pk=shown.pk).update(state=CommandState.ACCEPTED, expires_at=expires)
    lost = Command.objects.create(
        cmd_id="never-arrived",
        channel="mqtt",
        robot=robot,
        cmd="open",
        args={},
        created_at=now,
        expires_at=expires,
        next_attempt_at=now,
        sent_at=now,
        attempts=1,
        state=CommandState.EXPIRED,
    )
    assert store.stage_recalls(expires) == 0  # too soon after expiry: an ack may be on its way

    later = expires + store.RECALL_GAPS[0]
    assert store.stage_recalls(later) == 1  # one ask to the robot, about all three
    wait_until(
        lambda: Command.objects.filter(pk__in=[opened.pk, shown.pk], state="done").count() == 2,
        what="the robot's repeated acks settle the open and the prompt",
    )
    asked = Command.objects.get(cmd="resend_acks")
    assert sorted(asked.args["cmd_ids"]) == sorted([opened.cmd_id, shown.cmd_id, lost.cmd_id])
    wait_until(lambda: Command.objects.get(pk=asked.pk).state == "done", what="the ask acked")
    assert sim.opens == 1  # asked about, never run again
    lost.refresh_from_db()
    assert (lost.state, lost.recalls) == (CommandState.EXPIRED, 1)

    # the robot does not know it: asked again on schedule, then given up on
    assert store.stage_recalls(later + timedelta(seconds=30)) == 0
    next_ask = later + store.RECALL_GAPS[1]
    assert store.stage_recalls(next_ask) == 1
    assert store.stage_recalls(next_ask + store.RECALL_GAPS[2]) == 1
    assert store.stage_recalls(next_ask + timedelta(minutes=30)) == 0
    lost.refresh_from_db()
    assert (lost.state, lost.recalls) == (CommandState.EXPIRED, 3)
    assert Command.objects.filter(cmd="resend_acks").count() == 3
    # nothing asks about a robot's answer it already has
    assert Command.objects.get(pk=opened.pk).recalls == 1
