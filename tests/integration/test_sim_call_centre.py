"""``eppark sim call``: a robot's call button becomes a call, exactly as a real one would.

A real MQTT broker (embedded), a simulated robot, a live server and the simulated
call centre: the driver presses the call button; the call centre sees the event as
the gateway user, posts ``ringing`` (the robot's SIM, the hotline, the seat),
``answered`` and ``hangup`` to ``/cti/generic/<key>``, signed; the server makes the
call of that robot's gate. A second press during the call makes no second call.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from eppark.accounts.models import Role
from eppark.calls.models import Call, CallState
from eppark.devices.models import Robot
from eppark.sim.callcentre import SimCallCentre, main_sim_call
from eppark.sim.robot import SimRobot
from tests.integration.factories import build_lot, call_centre, staff
from tests.integration.mqtt_fixtures import (  # noqa: F401  (fixtures)
    ROBOTS,
    TestBroker,
    cancel_tasks,
    close_loop_thread,
    embedded_broker,
    free_port,
)

T = TypeVar("T")
KEY = "k-cti-sim-0123456789"
SECRET = "sim-secret"
ROBOT = "EP-0001"
PHONE = "14400000001"


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Loop:
    """An event loop in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 20) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def close(self) -> None:
        self.run(cancel_tasks())
        close_loop_thread(self.loop, self.thread)


@pytest.fixture
def loop() -> Iterator[Loop]:
    running = Loop()
    yield running
    running.close()


@pytest.mark.django_db(transaction=True)
def test_a_call_button_rings_at_the_seat_and_is_answered(
    embedded_broker: TestBroker,  # noqa: F811
    live_server: Any,
    loop: Loop,
) -> None:
    agent = staff("kf-sim", Role.AGENT, [])
    world = build_lot("caike", "彩科", "粤B11111", agent)
    agent.staff.lots.set([world.lot])
    Robot.objects.filter(pk=world.robot.pk).update(code=ROBOT, phone=PHONE)
    call_centre(KEY, secret=SECRET)
    seat = agent.seat.number
    out = io.StringIO()
    centre = SimCallCentre(
        live_server.url,
        KEY,
        secret=SECRET,
        seats=[seat],
        mqtt_url=embedded_broker.url,
        mqtt_password=embedded_broker.gateway_password,
        port=free_port(),
        answer_after=0.3,
        talk=1.0,
        out=out,
    )
    robot = SimRobot(ROBOT, ROBOTS[ROBOT], embedded_broker.url, out=io.StringIO())
    loop.start(centre.run())
    loop.start(robot.run())

    async def ready() -> None:
        await centre.watching.wait()
        await robot.online.wait()

    loop.run(ready())
    loop.run(robot.press_call_button())
    wait_until(lambda: Call.objects.filter(state=CallState.ANSWERED).exists())
    loop.run(robot.press_call_button())  # pressed again while talking: no second call
    wait_until(lambda: len(centre.posted) == 3)  # the hangup's answer is in
    assert Call.objects.get().state == CallState.ENDED
    call = Call.objects.get()
    assert (call.caller, call.callee, call.seat) == (PHONE, "4008001234", seat)
    assert (call.robot_id, call.gate, call.agent) == (world.robot.pk, world.exit, agent)
    assert [(p["event"], p["status"]) for p in centre.posted] == [
        ("ringing", 200),
        ("answered", 200),
        ("hangup", 200),
    ]
    assert '"event": "ringing"' in out.getvalue()
    # the call is over: the next press is a new call
    loop.run(robot.press_call_button())
    wait_until(lambda: Call.objects.count() == 2)


@pytest.mark.parametrize(
    "argv",
    [[], ["--key", "k", "--port", "70000", "--no-mqtt"], ["--key", "k", "--talk", "-1"]],
)
def test_sim_call_refuses_bad_options(argv: list[str], capsys: Any) -> None:
    if not argv:  # --key is required
        with pytest.raises(SystemExit):
            main_sim_call(argv, out=io.StringIO())
        return
    assert main_sim_call(argv, out=io.StringIO()) == 2
    assert "eppark sim call:" in capsys.readouterr().err
