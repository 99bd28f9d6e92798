"""The gate loop rides out a database outage (production layout, a PostgreSQL of the test's own).

``eppark serve --no-gateway`` and ``eppark gateway`` run as processes against a
throwaway cluster and a real Mosquitto; the test plays the robot over MQTT
itself, so that it can answer a command while the database is away. The
cluster is stopped for a few seconds in the middle, then:

- the acks the robot sent during the outage are applied (the commands end
  ``done``), its event is recorded, its offline and online are in order, and
  nobody asks it to repeat its acks;
- a push made during the outage is refused (503) and never acted on later;
- pushes succeed again within seconds of the restart;
- the gateway kept its MQTT session and logged the outage in a line or two
  (time, level, logger), not a traceback per message.

Runs in the PostgreSQL pass of ``make test`` only (``postgres_pass``): it starts
its own cluster either way. Missing PostgreSQL binaries fail it, never skip it.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import psycopg
import pytest

from eppark.gateway import protocol
from eppark.sim.cameras import build_push
from tests.integration import mqtt_fixtures
from tests.integration.mqtt_fixtures import ROBOTS, TestBroker, free_port, wait_listening
from tests.integration.pg_cluster import Cluster, new_cluster, remove_cluster

pytestmark = pytest.mark.postgres_pass
mosquitto = mqtt_fixtures.mosquitto

ROOT = Path(__file__).resolve().parents[2]
CODE = "EP-0001"
KEY = "k-outage"
SERIAL = "sn-outage"
OUTAGE_S = 4.0
RECOVERY_LIMIT_S = 10.0
"""A liveness bound, not a speed figure (``make bench`` measures that): before the fix the
pool waited up to 15 s after the restart."""

SETUP = f"""
from eppark.devices.models import Camera, Robot
from eppark.lots.models import Gate, Lot
lot = Lot.objects.create(code="outage", name="断库车场", capacity=1000,
    temp_entry_confirmation=False,
    tariff={{"free_minutes": 30, "first": {{"minutes": 60, "price": 500}},
            "unit": {{"minutes": 60, "price": 300}}, "cap": {{"price": 3000, "per": "24h"}}}})
gate = Gate.objects.create(lot=lot, code="entry-1", name="入口1", direction="entry",
    opening_channel="robot")
robot = Robot.objects.create(code="{CODE}", name="{CODE}", lot=lot, gate=gate)
Camera.objects.create(vendor="vzenith", lot=lot, gate=gate, robot=robot, key="{KEY}",
    serial="{SERIAL}")
"""


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster of this test's own, with an ``eppark`` database migrated."""
    own = new_cluster()
    try:
        with psycopg.connect(own.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE eppark")
        yield own
    finally:
        remove_cluster(own)


def _env(cluster: Cluster, broker: TestBroker) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=cluster.url_of("eppark"),
        MQTT_URL=broker.url,
        EPPARK_MQTT_GATEWAY_PASSWORD=broker.gateway_password,
        EPPARK_SECRET_KEY="outage-test-secret",
        EPPARK_ALLOWED_HOSTS="127.0.0.1,localhost",
        EPPARK_LOG_LEVEL="WARNING",
        EPPARK_INGRESS_THREADS="4",
        PYTHONUNBUFFERED="1",
    )
    env.pop("PYTEST_VERSION", None)
    return env


def _eppark(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "eppark", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]


class Robot:
    """The robot, played by the test: it acks at once, or holds its acks until told."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.holding = False
        self.commands: list[protocol.Command] = []
        self.held: list[protocol.Command] = []
        self._client: aiomqtt.Client | None = None
        self._listener: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Connect (with a last will), subscribe, say online."""
        status = protocol.topic(CODE, "status")
        client = aiomqtt.Client(
            "127.0.0.1",
            self.port,
            username=CODE,
            password=ROBOTS[CODE],
            identifier=CODE,
            will=aiomqtt.Will(status, protocol.OFFLINE, qos=1, retain=True),
        )
        await client.__aenter__()
        await client.subscribe(protocol.topic(CODE, "commands"), qos=1)
        await client.publish(status, protocol.ONLINE, qos=1, retain=True)
        self._client = client
        self._listener = asyncio.create_task(self._listen(client))

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            assert isinstance(payload, bytes | bytearray)
            command = protocol.Command.from_json(bytes(payload))
            if any(seen.cmd_id == command.cmd_id for seen in self.commands):
                continue  # a redelivery (QoS 1) or a re-send: already handled
            self.commands.append(command)
            if self.holding:
                self.held.append(command)
            else:
                await self.ack(command)

    async def ack(self, command: protocol.Command) -> None:
        """Accept and run ``command`` (an open pulses the relay): two acks."""
        assert self._client is not None
        for status in ("accepted", "done"):
            ack = protocol.Ack(command.cmd_id, status, datetime.now(UTC))
            await self._client.publish(protocol.topic(CODE, "acks"), ack.to_json(), qos=1)

    async def release(self) -> None:
        """Ack every command held back."""
        held, self.held = self.held, []
        for command in held:
            await self.ack(command)

    async def call_button(self) -> str:
        """Press the call button; the event's id."""
        assert self._client is not None
        event = protocol.Event(uuid.uuid4().hex, datetime.now(UTC), protocol.CallButton())
        await self._client.publish(protocol.topic(CODE, "events"), event.to_json(), qos=1)
        return event.event_id

    async def leave(self) -> None:
        """Say offline and disconnect."""
        assert self._client is not None
        assert self._listener is not None
        status = protocol.topic(CODE, "status")
        await self._client.publish(status, protocol.OFFLINE, qos=1, retain=True)
        self._listener.cancel()
        await asyncio.gather(self._listener, return_exceptions=True)
        await self._client.__aexit__(None, None, None)
        self._client = None


def _push(port: int, plate: str, plate_id: int) -> int:
    """Post one Vzenith read of ``plate``; the HTTP status."""
    push = build_push("vzenith", SERIAL, plate, datetime.now(UTC), plate_id=plate_id)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST",
            f"/devices/lpr/vzenith/{KEY}",
            body=push.body,
            headers={"Content-Type": push.content_type},
        )
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _rows(cluster: Cluster, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(cluster.url_of("eppark"), autocommit=True, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


async def _until(check: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await asyncio.to_thread(check):
                return
        except psycopg.OperationalError:
            pass  # the database is still coming back
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.1)


def _commands_of(cluster: Cluster, plate: str) -> list[tuple[str, str]]:
    return [
        (cmd, state)
        for cmd, state in _rows(
            cluster,
            "SELECT c.cmd, c.state FROM devices_command c JOIN stays_gatevisit v"
            " ON v.id = c.visit_id WHERE v.plate = %s ORDER BY c.id",
            plate,
        )
    ]


def _robot_online(cluster: Cluster) -> bool:
    return bool(_rows(cluster, "SELECT online FROM devices_robot WHERE code = %s", CODE)[0][0])


async def _scenario(cluster: Cluster, broker: TestBroker, web_port: int) -> float:
    robot = Robot(broker.port)
    await robot.connect()
    await _until(lambda: _robot_online(cluster), "the gateway records the robot online")
    assert await asyncio.to_thread(_push, web_port, "粤B10001", 1) == 200
    await _until(
        lambda: sorted(c.cmd for c in robot.commands) == ["open", "present"],
        "the robot is told to open and what to show",
    )
    await _until(
        lambda: _commands_of(cluster, "粤B10001") == [("present", "done"), ("open", "done")],
        "acks applied before the outage",
    )

    robot.holding = True
    assert await asyncio.to_thread(_push, web_port, "粤B10002", 2) == 200
    await _until(lambda: len(robot.held) == 2, "the second car's open and prompt reach the robot")

    await asyncio.to_thread(cluster.stop)
    stopped = time.monotonic()
    await robot.release()  # the open ran: its acks reach the gateway while the database is away
    event_id = await robot.call_button()
    await robot.leave()
    refused = await asyncio.to_thread(_push, web_port, "粤B10003", 3)
    assert refused == 503, f"a push during the outage was answered {refused}"
    await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))

    await asyncio.to_thread(cluster.start)
    back = time.monotonic()
    plate_id = 10
    while await asyncio.to_thread(_push, web_port, f"粤C{plate_id:05d}", plate_id) != 200:
        plate_id += 1
        assert time.monotonic() - back < RECOVERY_LIMIT_S, "pushes still fail after the restart"
        await asyncio.sleep(0.2)
    recovered = time.monotonic() - back

    await _until(
        lambda: _commands_of(cluster, "粤B10002") == [("present", "done"), ("open", "done")],
        "the acks sent during the outage are applied: the open that ran is done",
    )
    await _until(
        lambda: _rows(cluster, "SELECT 1 FROM devices_robotevent WHERE event_id = %s", event_id),
        "the event sent during the outage is recorded",
    )
    await _until(lambda: not _robot_online(cluster), "the robot's goodbye is recorded")
    await robot.connect()
    await _until(lambda: _robot_online(cluster), "the robot back online is recorded")
    await robot.leave()
    return recovered


def test_the_gate_loop_rides_out_a_database_outage(
    cluster: Cluster, mosquitto: TestBroker, tmp_path: Path
) -> None:
    env = _env(cluster, mosquitto)
    _eppark(env, "migrate", "--verbosity", "0")
    _eppark(env, "shell", "-c", SETUP)
    web_port = free_port()
    logs = {name: tmp_path / f"{name}.log" for name in ("gateway", "web")}
    processes = []
    try:
        for name, args in (
            ("gateway", ["gateway"]),
            ("web", ["serve", "--no-gateway", "--port", str(web_port)]),
        ):
            with logs[name].open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "eppark", *args],
                        env=env,
                        cwd=ROOT,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        wait_listening(web_port, timeout=30)
        asyncio.run(_scenario(cluster, mosquitto, web_port))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()

    # refused during the outage, and never acted on later
    assert _rows(cluster, "SELECT id FROM stays_gatevisit WHERE plate = '粤B10003'") == []
    assert _rows(cluster, "SELECT id FROM devices_plateread WHERE plate = '粤B10003'") == []
    # the robot was never asked to repeat acks that were only waiting for the database
    assert _rows(cluster, "SELECT id FROM devices_command WHERE cmd = 'resend_acks'") == []

    gateway_log = logs["gateway"].read_text()
    assert "Traceback" not in gateway_log, gateway_log[-3000:]
    assert "broker link down" not in gateway_log, gateway_log[-3000:]
    lines = [line for line in gateway_log.splitlines() if "gateway" in line]
    unreachable = [line for line in lines if "database unreachable" in line]
    assert 1 <= len(unreachable) <= 4, gateway_log[-3000:]  # once per state change and user
    assert any("database back" in line for line in lines), gateway_log[-3000:]
    # a log line says when, how bad and who
    stamped = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING eppark\.gateway\.service: "
    assert re.match(stamped, unreachable[0]), unreachable[0]
