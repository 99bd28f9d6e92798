"""A robot put into service over a real Mosquitto (and the embedded broker): issue 9, item 4.

``eppark robot-password`` gives the robot its password, ``eppark mosquitto-config``
writes Mosquitto's files from the database, and the simulator connects with it. No
robot's credentials reach another robot's commands or take its client id; a wrong or
missing password is said on stderr and ends the simulator.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest
from django.core.management import call_command

from eppark.gateway.protocol import ONLINE, topic
from eppark.lots.models import Gate, Lot
from tests.integration import mqtt_fixtures
from tests.integration.mqtt_fixtures import MOSQUITTO, TestBroker, free_port, wait_listening
from tests.integration.test_robot_mqtt import connect, next_message, on, run

mosquitto = mqtt_fixtures.mosquitto
embedded_broker = mqtt_fixtures.embedded_broker
any_broker = mqtt_fixtures.any_broker

SIM_TIMEOUT = 60.0
"""A safety net only: a refused simulator ends within seconds."""


def test_another_robots_credentials_cannot_take_a_robots_client_id(any_broker: TestBroker) -> None:
    own, other = topic("EP-0001", "commands"), topic("EP-0002", "commands")

    async def scenario() -> None:
        async with connect(any_broker, "EP-0001") as owner:
            await owner.subscribe(own, qos=1)
            intruder_heard: list[bytes] = []
            try:
                # robot B's credentials, robot A's client id: refused (embedded broker), or
                # connected under B's own id (Mosquitto: use_username_as_clientid)
                async with connect(any_broker, "EP-0002", identifier="EP-0001") as intruder:
                    await intruder.subscribe(own, qos=1)  # the ACL: nothing is delivered
                    await intruder.subscribe(other, qos=1)
                    async with connect(any_broker, "gateway") as gateway:
                        await gateway.publish(own, b"for robot A", qos=1)
                        await gateway.publish(other, b"for robot B", qos=1)
                    async with asyncio.timeout(15):
                        async for message in intruder.messages:
                            intruder_heard.append(bytes(message.payload))
                            if message.topic.value == other:
                                break
            except aiomqtt.MqttError:
                assert any_broker.name == "embedded"
                async with connect(any_broker, "gateway") as gateway:
                    await gateway.publish(own, b"for robot A", qos=1)
            else:
                assert any_broker.name == "mosquitto"
                assert intruder_heard == [b"for robot B"]  # robot A's command never reached it
            first = await next_message(owner, on(own))  # robot A is still connected
        assert first.payload == b"for robot A"

    run(scenario())


def _sim(broker: TestBroker, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``python -m eppark.sim.robot`` to its end: exit status and stderr."""
    command = [sys.executable, "-m", "eppark.sim.robot", *args, "--url", broker.url]
    environment = {k: v for k, v in os.environ.items() if k != "EPPARK_ROBOT_PASSWORD"}
    finished = subprocess.run(
        command,
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=SIM_TIMEOUT,
        check=False,
    )
    return finished.returncode, finished.stderr


def test_the_simulator_with_a_wrong_password_says_so_and_exits(any_broker: TestBroker) -> None:
    status, stderr = _sim(any_broker, "EP-0001", "--password", "not-the-password")
    assert status == 1
    assert "robot EP-0001: the broker refused its login (" in stderr
    assert "bad user name or password" in stderr or "not authorised" in stderr
    assert "Traceback" not in stderr


def test_the_simulator_of_an_unknown_robot_says_so_and_exits(any_broker: TestBroker) -> None:
    status, stderr = _sim(any_broker, "EP-0404", "--password", "whatever")
    assert status == 1
    assert "robot EP-0404: the broker refused its login" in stderr


def test_the_simulator_without_a_password_says_so(any_broker: TestBroker) -> None:
    status, stderr = _sim(any_broker, "EP-0001")
    assert status == 2
    assert "EP-0001: has no password" in stderr


def test_eppark_sim_robot_with_no_password_says_the_demo_one_was_refused(
    any_broker: TestBroker, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "eppark", "sim", "robot", "EP-0001", "--url", any_broker.url]
    env = {
        **{k: v for k, v in os.environ.items() if k != "EPPARK_ROBOT_PASSWORD"},
        "EPPARK_TESTING": "1",
        "EPPARK_VAR_DIR": str(tmp_path),
    }
    finished = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=SIM_TIMEOUT, check=False
    )
    assert finished.returncode != 0
    assert "Traceback" not in finished.stderr
    # the demo's password is tried and refused, or there is none to try outside the demo
    refused = "the broker refused its login" in finished.stderr
    if refused:
        assert "no password was given: the demo's was tried" in finished.stderr
    else:
        assert "has no password" in finished.stderr


@pytest.mark.django_db
def test_a_robot_put_into_service_connects_to_mosquitto_with_its_new_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not Path(MOSQUITTO).exists():
        pytest.fail("mosquitto is not installed: run tools/ensure-services")
    lot = Lot.objects.create(code="caike", name="彩科", capacity=10)
    gate = Gate.objects.create(lot=lot, code="exit-1", name="出口1", direction="exit")
    from eppark.devices.models import Robot

    Robot.objects.create(code="EP-0007", name="出口1", lot=lot, gate=gate)
    Robot.objects.create(code="EP-0008", name="入口1", lot=lot)  # no password yet
    out = io.StringIO()
    call_command("robot_password", "EP-0007", stdout=out)
    password = out.getvalue().strip()
    monkeypatch.setenv("EPPARK_MQTT_GATEWAY_PASSWORD", "gateway-secret-for-test")
    port = free_port()
    said = io.StringIO()
    folder = tmp_path / "mosquitto"
    call_command(
        "mosquitto_config", str(folder), "--host", "127.0.0.1", "--port", str(port), stdout=said
    )
    assert "1 robots and the gateway" in said.getvalue()
    assert "no password yet (eppark robot-password CODE): EP-0008" in said.getvalue()
    passwd = (folder / "passwd").read_text()
    assert password not in passwd
    assert "EP-0007:$7$" in passwd
    assert "EP-0008" not in passwd
    assert oct((folder / "passwd").stat().st_mode & 0o777) == "0o600"
    config = folder / "mosquitto.conf"
    text = config.read_text()
    assert "use_username_as_clientid true" in text
    assert "max_packet_size 524288" in text
    assert "#listener 8883" in text
    assert "#certfile" in text
    config.write_text(text + "user root\n")  # the test's folder is private to root
    process = subprocess.Popen(
        [MOSQUITTO, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_listening(port)
        broker = TestBroker(
            "mosquitto",
            port,
            lambda: None,
            lambda: None,
            passwords={"EP-0007": password},
            gateway_password="gateway-secret-for-test",
        )

        async def scenario() -> None:
            status = topic("EP-0007", "status")
            async with connect(broker, "gateway") as gateway:
                await gateway.subscribe(status, qos=1)
                sim = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "eppark.sim.robot",
                    "EP-0007",
                    "--url",
                    broker.url,
                    env={**os.environ, "EPPARK_ROBOT_PASSWORD": password},
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                try:
                    online = await next_message(gateway, lambda m: m.payload == ONLINE.encode())
                finally:
                    sim.terminate()
                    await sim.wait()
            assert online.topic.value == status

        run(scenario())
        status, stderr = _sim(broker, "EP-0007", "--password", password + "x")
        assert status == 1
        assert "the broker refused its login" in stderr
    finally:
        process.terminate()
        process.wait(10)
