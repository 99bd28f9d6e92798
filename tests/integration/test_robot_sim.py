"""The simulated robot against real brokers: acks, time-to-live, duplicates, reconnection."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import datetime, timedelta

import aiomqtt

from eppark.gateway.protocol import (
    OFFLINE,
    ONLINE,
    Ack,
    CaptureId,
    Command,
    Display,
    Event,
    IdPhoto,
    Open,
    Present,
    ResendAcks,
    topic,
)
from eppark.sim.robot import SimRobot
from tests.integration import mqtt_fixtures
from tests.integration.mqtt_fixtures import TestBroker
from tests.integration.test_robot_mqtt import TIMEOUT, connect, next_message, on

mosquitto = mqtt_fixtures.mosquitto
embedded_broker = mqtt_fixtures.embedded_broker
any_broker = mqtt_fixtures.any_broker

CODE = "EP-0001"
WELCOME = Present(Display("face", face="smile"), "green", voice="欢迎光临")


def now() -> datetime:
    """The test's clock (the robot's too: same machine)."""
    return datetime.now().astimezone()


def command(
    args: Open | Present | CaptureId | ResendAcks, *, age_ms: int = 0, ttl_ms: int = 10_000
) -> Command:
    """A command sent ``age_ms`` ago."""
    return Command(
        f"c-{uuid.uuid4().hex[:12]}", now() - timedelta(milliseconds=age_ms), ttl_ms, args
    )


async def send(gateway: aiomqtt.Client, cmd: Command | bytes) -> None:
    """Publish a command (or raw bytes) to the robot."""
    payload = cmd if isinstance(cmd, bytes) else cmd.to_json()
    await gateway.publish(topic(CODE, "commands"), payload, qos=1)


async def acks(gateway: aiomqtt.Client, cmd_id: str, count: int) -> list[Ack]:
    """The next ``count`` acks of one command."""
    found: list[Ack] = []
    while len(found) < count:
        message = await next_message(gateway, on(topic(CODE, "acks")))
        assert isinstance(message.payload, bytes)
        ack = Ack.from_json(message.payload)
        if ack.cmd_id == cmd_id:
            found.append(ack)
    return found


def robot_for(broker: TestBroker, out: io.StringIO | None = None) -> SimRobot:
    """The simulated EP-0001 on this broker."""
    return SimRobot(CODE, broker.passwords[CODE], broker.url, out=out or io.StringIO())


def test_a_present_command_is_acked_accepted_then_done_and_shown(any_broker: TestBroker) -> None:
    out = io.StringIO()

    async def scenario() -> None:
        async with connect(any_broker, "gateway") as gateway, robot_for(any_broker, out) as robot:
            await gateway.subscribe("ep/robots/+/+", qos=1)
            await robot.wait_online(TIMEOUT)
            cmd = command(WELCOME)
            await send(gateway, cmd)
            accepted, done = await acks(gateway, cmd.cmd_id, 2)
            shown = await next_message(gateway, on(topic(CODE, "events")))
            assert (accepted.status, done.status) == ("accepted", "done")
            assert done.screen == robot.screen
            assert robot.screen.display == WELCOME.display
            assert (robot.screen.voice, robot.screen.light) == ("欢迎光临", "green")
            assert robot.screen.cmd_id == cmd.cmd_id
            assert isinstance(shown.payload, bytes)
            assert Event.from_json(shown.payload).type in ("screen_shown", "voice_played")
        [line] = out.getvalue().splitlines()
        printed = json.loads(line)
        assert printed["robot"] == CODE
        assert (printed["cmd_id"], printed["cmd"], printed["status"]) == (
            cmd.cmd_id,
            "present",
            "done",
        )
        assert printed["args"] == WELCOME.to_dict()

    asyncio.run(scenario())


def test_an_expired_command_is_acked_expired_and_never_run(any_broker: TestBroker) -> None:
    async def scenario() -> None:
        async with connect(any_broker, "gateway") as gateway, robot_for(any_broker) as robot:
            await gateway.subscribe(topic(CODE, "acks"), qos=1)
            await robot.wait_online(TIMEOUT)
            late = command(Open(), age_ms=60_000, ttl_ms=5_000)
            await send(gateway, late)
            [ack] = await acks(gateway, late.cmd_id, 1)
            timely = command(Open())
            await send(gateway, timely)
            await acks(gateway, timely.cmd_id, 2)
        assert ack.status == "expired"
        assert robot.opens == 1
        assert [c.cmd_id for c in robot.executed] == [timely.cmd_id]

    asyncio.run(scenario())


def test_a_duplicate_delivery_is_acked_again_but_run_once(any_broker: TestBroker) -> None:
    async def scenario() -> None:
        async with connect(any_broker, "gateway") as gateway, robot_for(any_broker) as robot:
            await gateway.subscribe(topic(CODE, "acks"), qos=1)
            await robot.wait_online(TIMEOUT)
            cmd = command(Open())
            await send(gateway, cmd)
            await send(gateway, cmd)
            statuses = [ack.status for ack in await acks(gateway, cmd.cmd_id, 3)]
        assert statuses == ["accepted", "done", "done"]
        assert robot.opens == 1

    asyncio.run(scenario())


def test_resend_acks_repeats_what_the_robot_answered_and_runs_nothing(
    any_broker: TestBroker,
) -> None:
    async def scenario() -> None:
        async with connect(any_broker, "gateway") as gateway, robot_for(any_broker) as robot:
            await gateway.subscribe(topic(CODE, "acks"), qos=1)
            await robot.wait_online(TIMEOUT)
            opened, late = command(Open()), command(Open(), age_ms=60_000, ttl_ms=5_000)
            await send(gateway, opened)
            await acks(gateway, opened.cmd_id, 2)
            await send(gateway, late)
            await acks(gateway, late.cmd_id, 1)
            ask = command(ResendAcks((opened.cmd_id, "never-sent", late.cmd_id)))
            await send(gateway, ask)
            repeated: list[Ack] = []
            while True:
                message = await next_message(gateway, on(topic(CODE, "acks")))
                assert isinstance(message.payload, bytes)
                ack = Ack.from_json(message.payload)
                repeated.append(ack)
                if ack.cmd_id == ask.cmd_id and ack.status == "done":
                    break
        answered = [(ack.cmd_id, ack.status) for ack in repeated]
        assert answered == [
            (ask.cmd_id, "accepted"),
            (opened.cmd_id, "done"),  # the last ack of each, in the order asked
            (late.cmd_id, "expired"),
            (ask.cmd_id, "done"),
        ]
        assert robot.opens == 1  # nothing ran again

    asyncio.run(scenario())


def test_a_bad_command_is_acked_failed_naming_the_field(any_broker: TestBroker) -> None:
    async def scenario() -> None:
        async with connect(any_broker, "gateway") as gateway:
            await gateway.subscribe(topic(CODE, "acks"), qos=1)
            async with robot_for(any_broker) as robot:
                await robot.wait_online(TIMEOUT)
                bad = command(WELCOME).to_dict()
                bad["args"]["light"] = "blue"
                await send(gateway, json.dumps(bad).encode())
                [ack] = await acks(gateway, bad["cmd_id"], 1)
            # stopped the moment its ack arrives, the robot still says goodbye before stop returns
            await gateway.subscribe(topic(CODE, "status"), qos=1)
            status = await next_message(gateway, on(topic(CODE, "status")))
        assert status.payload == OFFLINE.encode()
        assert ack.status == "failed"
        assert ack.detail is not None
        assert ack.detail.startswith("args.light")
        assert robot.executed == []

    asyncio.run(scenario())


def test_capture_id_sends_the_asked_number_of_id_photos(any_broker: TestBroker) -> None:
    async def scenario() -> None:
        async with connect(any_broker, "gateway") as gateway, robot_for(any_broker) as robot:
            await gateway.subscribe(topic(CODE, "events"), qos=1)
            await robot.wait_online(TIMEOUT)
            cmd = command(CaptureId(count=2))
            await send(gateway, cmd)
            photos = []
            for _ in range(2):
                message = await next_message(gateway)
                assert isinstance(message.payload, bytes)
                photos.append(Event.from_json(message.payload).data)
        assert all(isinstance(p, IdPhoto) and p.cmd_id == cmd.cmd_id for p in photos)
        assert [p.index for p in photos if isinstance(p, IdPhoto)] == [1, 2]

    asyncio.run(scenario())


def test_the_robot_reconnects_after_the_broker_restarts(any_broker: TestBroker) -> None:
    async def scenario() -> None:
        async with robot_for(any_broker) as robot:
            await robot.wait_online(TIMEOUT)
            await asyncio.to_thread(any_broker.restart)
            async with asyncio.timeout(TIMEOUT):
                while robot.connections < 2 or not robot.online.is_set():
                    await asyncio.sleep(0.05)
            async with connect(any_broker, "gateway") as gateway:
                await gateway.subscribe("ep/robots/+/+", qos=1)
                status = await next_message(gateway, on(topic(CODE, "status")))
                cmd = command(Open())
                await send(gateway, cmd)
                statuses = [ack.status for ack in await acks(gateway, cmd.cmd_id, 2)]
        assert status.payload == ONLINE.encode()
        assert statuses == ["accepted", "done"]
        assert robot.opens == 1

    asyncio.run(scenario())


def test_events_raised_while_the_link_is_down_are_sent_after_reconnecting(
    any_broker: TestBroker,
) -> None:
    async def scenario() -> None:
        robot = robot_for(any_broker)
        async with robot:
            await robot.wait_online(TIMEOUT)
            await asyncio.to_thread(any_broker.stop)
            async with asyncio.timeout(TIMEOUT):
                while robot.online.is_set():
                    await asyncio.sleep(0.05)
            pressed = await robot.press_call_button()
        await asyncio.to_thread(any_broker.start)
        async with connect(any_broker, "gateway") as gateway:
            await gateway.subscribe(topic(CODE, "events"), qos=1)
            async with robot:
                message = await next_message(gateway)
        assert isinstance(message.payload, bytes)
        assert Event.from_json(message.payload).event_id == pressed.event_id

    asyncio.run(scenario())
