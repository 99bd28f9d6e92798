"""The robot link over real brokers (Mosquitto and the embedded one): credentials, ACL, status."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import aiomqtt
import pytest

from eppark.gateway.protocol import OFFLINE, ONLINE, Command, Event, Open, topic
from tests.integration import mqtt_fixtures
from tests.integration.mqtt_fixtures import TestBroker

mosquitto = mqtt_fixtures.mosquitto
embedded_broker = mqtt_fixtures.embedded_broker
any_broker = mqtt_fixtures.any_broker

TIMEOUT = 15.0


@contextlib.asynccontextmanager
async def connect(
    broker: TestBroker,
    user: str,
    password: str | None = None,
    identifier: str | None = None,
    will: aiomqtt.Will | None = None,
) -> AsyncIterator[aiomqtt.Client]:
    """A client logged in as ``user`` (the gateway gets a unique client id)."""
    if password is None:
        password = broker.gateway_password if user == "gateway" else broker.passwords[user]
    if identifier is None:
        identifier = f"gateway-{uuid.uuid4().hex[:8]}" if user == "gateway" else user
    client = aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=user,
        password=password,
        identifier=identifier,
        will=will,
    )
    async with client:
        yield client


async def next_message(
    client: aiomqtt.Client, where: Callable[[aiomqtt.Message], bool] = lambda _m: True
) -> aiomqtt.Message:
    """The next message that satisfies ``where`` (fails after TIMEOUT seconds)."""
    async with asyncio.timeout(TIMEOUT):
        async for message in client.messages:
            if where(message):
                return message
    raise AssertionError("the message stream ended")


def on(name: str) -> Callable[[aiomqtt.Message], bool]:
    """Messages on one topic."""
    return lambda message: message.topic.value == name


def run(coroutine: object) -> None:
    """Run one async scenario."""
    asyncio.run(coroutine)  # type: ignore[arg-type]


def test_robot_publish_under_its_own_topic_reaches_the_gateway_and_others_are_dropped(
    any_broker: TestBroker,
) -> None:
    async def scenario() -> None:
        async with connect(any_broker, "gateway") as gateway:
            await gateway.subscribe("ep/#", qos=1)
            async with connect(any_broker, "EP-0001") as robot:
                await robot.publish(topic("EP-0002", "events"), b"forged", qos=1)
                await robot.publish(topic("EP-0002", "status"), b"offline", qos=1, retain=True)
                await robot.publish(topic("EP-0001", "commands"), b"self-command", qos=1)
                await robot.publish("elsewhere/x", b"stray", qos=1)
                await robot.publish(topic("EP-0001", "events"), b"mine", qos=1)
                first = await next_message(gateway)
        assert (first.topic.value, first.payload) == (topic("EP-0001", "events"), b"mine")

    run(scenario())


def test_a_robot_receives_nothing_of_another_robots_commands(any_broker: TestBroker) -> None:
    async def scenario() -> None:
        async with connect(any_broker, "EP-0002") as intruder:
            for wanted in (topic("EP-0001", "commands"), "ep/robots/+/commands", "ep/#", "#"):
                with contextlib.suppress(aiomqtt.MqttError):
                    await intruder.subscribe(wanted, qos=1)
            await intruder.subscribe(topic("EP-0002", "commands"), qos=1)
            async with connect(any_broker, "gateway") as gateway:
                await gateway.publish(topic("EP-0001", "commands"), b"not yours", qos=1)
                await gateway.publish(topic("EP-0001", "status"), b"online", qos=1, retain=True)
                await gateway.publish(topic("EP-0002", "commands"), b"yours", qos=1)
            first = await next_message(intruder)
        assert (first.topic.value, first.payload) == (topic("EP-0002", "commands"), b"yours")

    run(scenario())


@pytest.mark.parametrize(
    ("user", "password"),
    [("EP-0001", "wrong"), ("EP-0001", ""), ("EP-9999", "secret-0001"), ("gateway", "secret-0001")],
)
def test_wrong_credentials_are_refused(any_broker: TestBroker, user: str, password: str) -> None:
    async def scenario() -> None:
        with pytest.raises(aiomqtt.MqttError):
            async with connect(any_broker, user, password):
                pass

    run(scenario())


def test_anonymous_clients_are_refused(any_broker: TestBroker) -> None:
    async def scenario() -> None:
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client("127.0.0.1", any_broker.port, identifier="anonymous"):
                pass

    run(scenario())


def raw_connect(
    port: int, client_id: str, user: str, password: str, will: tuple[str, bytes]
) -> int:
    """Send a bare MQTT 3.1.1 CONNECT with a retained QoS 1 will, read the CONNACK's return code,
    then drop the TCP connection without DISCONNECT (as a power cut would)."""

    def field(data: bytes) -> bytes:
        return len(data).to_bytes(2, "big") + data

    flags = 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02
    body = field(b"MQTT") + bytes([4, flags]) + (60).to_bytes(2, "big")
    body += field(client_id.encode()) + field(will[0].encode()) + field(will[1])
    body += field(user.encode()) + field(password.encode())
    assert len(body) < 128
    with socket.create_connection(("127.0.0.1", port), TIMEOUT) as sock:
        sock.sendall(bytes([0x10, len(body)]) + body)
        connack = b""
        while len(connack) < 4:
            chunk = sock.recv(4 - len(connack))
            if not chunk:
                return -1
            connack += chunk
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return connack[3]


def test_an_unclean_drop_fires_the_will_only_on_the_robots_own_status(
    any_broker: TestBroker,
) -> None:
    async def scenario() -> None:
        password = any_broker.passwords["EP-0001"]
        async with connect(any_broker, "gateway") as gateway:
            await gateway.subscribe("ep/+/+/status", qos=1)
            forged = (topic("EP-0002", "status"), OFFLINE.encode())
            code = await asyncio.to_thread(
                raw_connect, any_broker.port, "EP-0001", "EP-0001", password, forged
            )
            if any_broker.name == "embedded":
                assert code == 5  # not authorised
            own = (topic("EP-0001", "status"), OFFLINE.encode())
            code = await asyncio.to_thread(
                raw_connect, any_broker.port, "EP-0001", "EP-0001", password, own
            )
            assert code == 0
            first = await next_message(gateway)
        assert (first.topic.value, first.payload) == own

    run(scenario())


def _start_sim(broker: TestBroker, code: str) -> subprocess.Popen[bytes]:
    """A simulated robot in a process of its own (so it can die without saying goodbye)."""
    command = [sys.executable, "-m", "eppark.sim.robot", code, "--url", broker.url]
    env = {**os.environ, "EPPARK_ROBOT_PASSWORD": broker.passwords[code]}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_status_is_online_while_connected_and_the_will_says_offline_on_an_unclean_drop(
    any_broker: TestBroker,
) -> None:
    status = topic("EP-0001", "status")

    async def scenario() -> None:
        process = _start_sim(any_broker, "EP-0001")
        try:
            async with connect(any_broker, "gateway") as gateway:
                await gateway.subscribe(status, qos=1)
                online = await next_message(gateway, lambda m: m.payload == ONLINE.encode())
                process.send_signal(signal.SIGKILL)
                process.wait(10)
                offline = await next_message(gateway)
            async with connect(any_broker, "gateway") as late:
                await late.subscribe(status, qos=1)
                retained = await next_message(late)
        finally:
            process.kill()
            process.wait(10)
        assert online.topic.value == status
        assert offline.payload == OFFLINE.encode()
        assert (retained.payload, retained.retain) == (OFFLINE.encode(), True)

    run(scenario())


def test_a_robot_cannot_take_another_robots_client_id_on_the_embedded_broker(
    embedded_broker: TestBroker,
) -> None:
    async def scenario() -> None:
        async with connect(embedded_broker, "EP-0001") as owner:
            await owner.subscribe(topic("EP-0001", "commands"), qos=1)
            with pytest.raises(aiomqtt.MqttError):
                async with connect(embedded_broker, "EP-0002", identifier="EP-0001"):
                    pass
            with pytest.raises(aiomqtt.MqttError):
                async with connect(embedded_broker, "EP-0001", "wrong", identifier="EP-0001"):
                    pass
            async with connect(embedded_broker, "gateway") as gateway:
                await gateway.publish(topic("EP-0001", "commands"), b"still yours", qos=1)
            first = await next_message(owner)
        assert first.payload == b"still yours"

    run(scenario())


def test_a_new_client_gets_no_retained_message_it_did_not_subscribe_to(
    any_broker: TestBroker,
) -> None:
    async def scenario() -> None:
        async with connect(any_broker, "gateway") as gateway:
            await gateway.subscribe("ep/#", qos=1)
            await gateway.publish(topic("EP-0002", "status"), ONLINE, qos=1, retain=True)
            await next_message(gateway)
            async with connect(any_broker, "EP-0001") as robot:
                await robot.subscribe(topic("EP-0001", "commands"), qos=1)
                await gateway.publish(topic("EP-0001", "commands"), b"first", qos=1)
                first = await next_message(robot)
        assert first.payload == b"first"

    run(scenario())


def test_gateway_reads_robot_events_as_typed_messages(any_broker: TestBroker) -> None:
    from eppark.sim.robot import SimRobot

    async def scenario() -> None:
        async with connect(any_broker, "gateway") as gateway:
            await gateway.subscribe(topic("EP-0001", "events"), qos=1)
            robot = SimRobot("EP-0001", any_broker.passwords["EP-0001"], any_broker.url)
            async with robot:
                await robot.wait_online(TIMEOUT)
                sent = await robot.press_call_button()
                message = await next_message(gateway)
        assert isinstance(message.payload, bytes)
        assert Event.from_json(message.payload).to_dict() == sent.to_dict()
        assert sent.type == "call_button"

    run(scenario())


def test_the_gateway_may_not_publish_outside_ep(any_broker: TestBroker) -> None:
    async def scenario() -> None:
        async with connect(any_broker, "gateway") as gateway:
            await gateway.subscribe("ep/#", qos=1)
            with contextlib.suppress(aiomqtt.MqttError):
                await gateway.subscribe("#", qos=1)
            await gateway.publish("elsewhere/x", b"stray", qos=1)
            command = Command("c-1", datetime.now().astimezone(), 5000, Open())
            await gateway.publish(topic("EP-0001", "commands"), command.to_json(), qos=1)
            first = await next_message(gateway)
        assert first.topic.value == topic("EP-0001", "commands")

    run(scenario())
