"""A simulated EP君 robot that speaks the real MQTT protocol (docs/robot-protocol.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import ssl
import sys
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self, TextIO, TypeVar

import aiomqtt

from eppark.domain.errors import BadInput
from eppark.gateway.protocol import (
    OFFLINE,
    ONLINE,
    QOS,
    Ack,
    CallButton,
    CaptureId,
    Command,
    Event,
    EventData,
    IdPhoto,
    Loop,
    Open,
    Present,
    QrScanned,
    ResendAcks,
    Screen,
    ScreenShown,
    VoicePlayed,
    default_mqtt_url,
    is_expired,
    parse_mqtt_url,
    peek_cmd_id,
    send_at_once,
    topic,
)
from eppark.sim.picture import id_card_png

log = logging.getLogger(__name__)
T = TypeVar("T")

# What the simulated ID camera "takes": a tiny JPEG (1×1 grey pixel).
SAMPLE_ID_PHOTO = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c"
    "1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc000"
    "0b080001000101011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400"
    "b5100002010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c1"
    "1552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a63"
    "6465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6"
    "b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008"
    "010100003f00fbd3ffd9"
)
REMEMBERED_COMMANDS = 1024
REMEMBERED_FOR = timedelta(hours=1)
"""Acks are remembered for the last 1024 commands and every command of the last hour."""
STOP_TIMEOUT = 5.0


def _now() -> datetime:
    """The robot's clock: local time with its offset, to the millisecond (as on the wire)."""
    now = datetime.now().astimezone()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _cancel_requests() -> int:
    """How many cancellations of the current task are pending (``Task.cancelling()``)."""
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


def _raise_if_cancelled_since(requests: int) -> None:
    """Raise the cancellation that arrived since ``_cancel_requests()`` gave ``requests``."""
    if _cancel_requests() > requests:
        raise asyncio.CancelledError


async def _confirmed(call: Awaitable[T]) -> T:
    """Await an aiomqtt call that waits for the broker's answer, keeping any cancellation.

    aiomqtt waits for CONNACK, SUBACK and PUBACK with ``asyncio.wait_for``, which before
    Python 3.12 swallows a cancellation that arrives after the answer but before the waiting
    task resumes (CPython gh-86296): the call returns normally and the task carries on, cancel
    lost. That window is the very loop turn in which the broker hands our ack to the gateway and
    its PUBACK to us, so a robot stopped as soon as its ack is seen went back to waiting for
    commands and never said offline. Re-raise such a cancellation here.
    """
    requests = _cancel_requests()
    result = await call
    _raise_if_cancelled_since(requests)
    return result


REFUSALS: Final = {
    4: "bad user name or password",  # MQTT 3.1.1 CONNACK return codes
    5: "not authorised",
    134: "bad user name or password",  # the MQTT 5 reason codes paho reports them as
    135: "not authorised",
}


class LoginRefused(Exception):
    """The broker refused the robot's user name and password: trying again will not help."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"robot {code}: the broker refused its login ({reason})")
        self.code = code
        self.reason = reason


def login_refusal(error: aiomqtt.MqttError) -> str | None:
    """Why the broker refused the login (None: the link failed for another reason)."""
    if not isinstance(error, aiomqtt.MqttCodeError):
        return None
    rc = getattr(error.rc, "value", error.rc)
    return REFUSALS.get(rc) if isinstance(rc, int) else None


class SimRobot:
    """One robot: status with a last will, commands acked and run once, events, reconnection."""

    def __init__(
        self,
        code: str,
        password: str,
        mqtt_url: str,
        *,
        out: TextIO | None = None,
        clock: Callable[[], datetime] = _now,
        max_backoff: float = 5.0,
        keepalive: int = 30,
    ) -> None:
        topic(code, "status")  # refuses a code that cannot be a topic level
        self.code = code
        self.password = password
        self.address = parse_mqtt_url(mqtt_url)
        self.out = out if out is not None else sys.stdout
        self.clock = clock
        self.max_backoff = max_backoff
        self.keepalive = keepalive
        self.screen = Screen()
        self.executed: list[Command] = []
        self.opens = 0
        self.opened: list[tuple[str, datetime]] = []  # (cmd_id, when the relay pulsed)
        self.connections = 0
        self.online = asyncio.Event()
        self._acks: OrderedDict[str, Ack] = OrderedDict()
        self._outbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._pending: tuple[str, str] | None = None
        self._task: asyncio.Task[None] | None = None

    # --- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected until cancelled, reconnecting with backoff whenever the link breaks.

        A login the broker refuses (wrong or unknown password) raises ``LoginRefused``:
        the same password would be refused again.
        """
        backoff = 0.2
        while True:
            connections = self.connections
            try:
                await self._session()
            except aiomqtt.MqttError as error:
                refusal = login_refusal(error)
                if refusal is not None:
                    raise LoginRefused(self.code, refusal) from None
                log.info("robot %s: link down (%s)", self.code, error)
            if self.connections != connections:
                backoff = 0.2
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self.max_backoff)

    async def _session(self) -> None:
        """One connection: subscribe, say online, handle commands, send queued events."""
        status = topic(self.code, "status")
        tls = ssl.create_default_context() if self.address.tls else None
        client = aiomqtt.Client(
            self.address.host,
            self.address.port,
            username=self.code,
            password=self.password,
            identifier=self.code,
            will=aiomqtt.Will(status, OFFLINE, qos=QOS, retain=True),
            clean_session=True,
            keepalive=self.keepalive,
            tls_context=tls,
            timeout=5.0,
        )
        requests = _cancel_requests()
        async with client:
            _raise_if_cancelled_since(requests)  # the CONNACK's wait_for can swallow it too
            send_at_once(client)
            await _confirmed(client.subscribe(topic(self.code, "commands"), qos=QOS))
            await self._publish(client, status, ONLINE, retain=True)
            self.connections += 1
            self.online.set()
            log.info("robot %s: online at %s:%s", self.code, self.address.host, self.address.port)
            sender = asyncio.create_task(self._send_events(client))
            try:
                async for message in client.messages:
                    await self._handle(client, message.payload)
            except asyncio.CancelledError:
                with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                    async with asyncio.timeout(2):
                        await self._publish(client, status, OFFLINE, retain=True)
                raise
            finally:
                self.online.clear()
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender

    async def _send_events(self, client: aiomqtt.Client) -> None:
        """Publish queued events in order; one that fails waits for the next connection."""
        while True:
            if self._pending is None:
                self._pending = await self._outbox.get()
            name, payload = self._pending
            await self._publish(client, name, payload)
            self._pending = None

    @staticmethod
    async def _publish(
        client: aiomqtt.Client, name: str, payload: str, *, retain: bool = False
    ) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK (a stop is never lost in it)."""
        await _confirmed(client.publish(name, payload, qos=QOS, retain=retain))

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self.run(), name=f"robot {self.code}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Say offline and disconnect (the task started by ``async with``)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # a broker that stopped answering holds up the goodbye (offline publish up to
            # 2 s, then DISCONNECT up to the client's timeout): give up rather than hang
            done, _pending = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
            if not done:
                log.warning("robot %s: the MQTT client did not close in time", self.code)
            elif not task.cancelled() and task.exception() is not None:
                log.info("robot %s stopped: %s", self.code, task.exception())

    async def wait_online(self, timeout: float = 10.0) -> None:
        """Wait until the robot is connected and subscribed."""
        async with asyncio.timeout(timeout):
            await self.online.wait()

    # --- commands --------------------------------------------------------------------------

    async def _handle(self, client: aiomqtt.Client, payload: Any) -> None:
        """Answer one delivery: re-ack a duplicate, refuse a bad or late command, else run it."""
        raw = bytes(payload) if isinstance(payload, bytearray) else payload
        if not isinstance(raw, bytes | str):
            raw = b""
        now = self.clock()
        cmd_id = peek_cmd_id(raw)
        if cmd_id is None:
            log.warning("robot %s: dropped a command without a readable cmd_id", self.code)
            self._print({"cmd_id": None, "cmd": None, "status": "dropped", "at": now})
            return
        if cmd_id in self._acks:
            await self._ack(client, dataclasses.replace(self._acks[cmd_id], ts=now))
            return
        problem: str | None = None
        try:
            command = Command.from_json(raw)
        except BadInput as error:
            problem = str(error)[:500]
        if problem is not None:
            await self._ack(client, Ack(cmd_id, "failed", now, detail=problem))
            self._print(
                {"cmd_id": cmd_id, "cmd": None, "status": "failed", "detail": problem, "at": now}
            )
            return
        if is_expired(command, now):
            detail = f"arrived after its time-to-live ({command.expires_at.isoformat()})"
            await self._ack(client, Ack(cmd_id, "expired", now, detail=detail))
            self._print_command(command, "expired", now)
            return
        await self._ack(client, Ack(cmd_id, "accepted", now))
        if isinstance(command.args, ResendAcks):
            for asked in command.args.cmd_ids:  # what it once answered; nothing is run again
                held = self._acks.get(asked)
                if held is not None and asked != cmd_id:
                    await self._ack(client, dataclasses.replace(held, ts=self.clock()))
        ack = self._execute(command)
        await self._ack(client, ack)
        self._print_command(command, ack.status, ack.ts)

    def _execute(self, command: Command) -> Ack:
        """Carry out a valid, timely command once; the final ack."""
        now = self.clock()
        self.executed.append(command)
        args = command.args
        if isinstance(args, Present):
            self.screen = Screen(args.voice, args.display, args.light, now, command.cmd_id)
            self._queue_event(ScreenShown(command.cmd_id))
            if args.voice is not None:
                self._queue_event(VoicePlayed(command.cmd_id))
            return Ack(command.cmd_id, "done", now, screen=self.screen)
        if isinstance(args, Open):
            self.opens += 1
            self.opened.append((command.cmd_id, now))
            return Ack(command.cmd_id, "done", now)
        if isinstance(args, CaptureId):
            for index in range(1, args.count + 1):
                # a picture of an ID card (PNG), a little different each time
                card = id_card_png(index + len(self.executed))
                photo = IdPhoto(card, "image/png", cmd_id=command.cmd_id, index=index)
                self._queue_event(photo)
            return Ack(command.cmd_id, "done", now)
        if isinstance(args, ResendAcks):
            return Ack(command.cmd_id, "done", now)
        return Ack(command.cmd_id, "failed", now, detail=f"{command.cmd} is not supported")

    async def _ack(self, client: aiomqtt.Client, ack: Ack) -> None:
        """Publish an ack and remember it for duplicate deliveries."""
        self._acks[ack.cmd_id] = ack
        self._acks.move_to_end(ack.cmd_id)
        while len(self._acks) > REMEMBERED_COMMANDS:
            if next(iter(self._acks.values())).ts >= ack.ts - REMEMBERED_FOR:
                break  # the oldest is less than an hour old: the gateway may still ask
            self._acks.popitem(last=False)
        await self._publish(client, topic(self.code, "acks"), ack.to_json())

    def _print_command(self, command: Command, status: str, at: datetime) -> None:
        """One JSON line for a command and what became of it."""
        self._print(
            {
                "cmd_id": command.cmd_id,
                "cmd": command.cmd,
                "status": status,
                "args": command.args.to_dict(),
                "at": at,
            }
        )

    def _print(self, line: dict[str, Any]) -> None:
        """Write one JSON line to the output stream."""
        record = {"robot": self.code, **line}
        text = json.dumps(record, ensure_ascii=False, default=_iso)
        print(text, file=self.out, flush=True)

    # --- events ----------------------------------------------------------------------------

    def _queue_event(self, data: EventData) -> Event:
        """Queue an event for publishing (kept while the link is down)."""
        event = Event(f"{self.code}-{uuid.uuid4().hex}", self.clock(), data)
        self._outbox.put_nowait((topic(self.code, "events"), event.to_json()))
        return event

    async def press_call_button(self) -> Event:
        """The driver presses the call button."""
        return self._queue_event(CallButton())

    async def loop(self, present: bool) -> Event:
        """The vehicle detector senses a car arrive (True) or leave (False)."""
        return self._queue_event(Loop(present))

    async def id_photo(
        self,
        photo: bytes = SAMPLE_ID_PHOTO,
        content_type: str = "image/jpeg",
        cmd_id: str | None = None,
        index: int | None = None,
    ) -> Event:
        """The ID camera took a photo (sent inline, ≤ 256 KiB)."""
        return self._queue_event(IdPhoto(photo, content_type, cmd_id=cmd_id, index=index))

    async def scan_qr(self, code: str) -> Event:
        """The scanner read a code shown by the driver (a payment code)."""
        return self._queue_event(QrScanned(code))


def _iso(value: Any) -> Any:
    """JSON fallback: times as ISO 8601."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    raise TypeError(f"{type(value).__name__} is not JSON")


async def async_run_robots(
    codes: Sequence[str], passwords: Mapping[str, str], mqtt_url: str, out: TextIO
) -> None:
    """Run one simulated robot per code until cancelled."""
    robots = [SimRobot(code, passwords[code], mqtt_url, out=out) for code in codes]
    async with asyncio.TaskGroup() as group:
        for robot in robots:
            group.create_task(robot.run(), name=f"robot {robot.code}")


def _passwords(
    args: argparse.Namespace,
    codes: Sequence[str],
    fallback: Callable[[str], str] | None = None,
) -> dict[str, str]:
    """Each robot's password: --passwords FILE (JSON), --password / the environment, fallback."""
    table: dict[str, str] = {}
    if args.passwords:
        with open(args.passwords, encoding="utf-8") as handle:
            loaded = json.load(handle)
        if not isinstance(loaded, dict):
            raise BadInput("passwords", "must be a JSON object of robot code → password")
        table = {str(k): str(v) for k, v in loaded.items()}
    shared = args.password or os.environ.get("EPPARK_ROBOT_PASSWORD")
    result = {}
    for code in codes:
        password = table.get(code, shared)
        if not password and fallback is not None:
            password = fallback(code)
        if not password:
            raise BadInput(
                code, "has no password (--passwords FILE, --password or EPPARK_ROBOT_PASSWORD)"
            )
        result[code] = password
    return result


def main_sim_robot(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    fallback: Callable[[str], str] | None = None,
) -> int:
    """``eppark sim robot CODE…``: run simulated robots, one JSON line per command received."""
    parser = argparse.ArgumentParser(
        prog="eppark sim robot", description="Simulated EP君 robots over MQTT."
    )
    parser.add_argument("codes", nargs="+", metavar="CODE", help="robot code (its MQTT user name)")
    parser.add_argument("--url", help="broker URL (default: MQTT_URL, else the embedded broker)")
    parser.add_argument("--password", help="one password for every robot (demo)")
    parser.add_argument("--passwords", metavar="FILE", help="JSON object: robot code → password")
    args = parser.parse_args(argv)
    try:
        url = args.url or default_mqtt_url(os.environ)
        parse_mqtt_url(url)
        for code in args.codes:
            topic(code, "status")
        passwords = _passwords(args, args.codes, fallback)
    except (BadInput, OSError, ValueError) as error:
        print(f"eppark sim robot: {error}", file=sys.stderr)
        return 2
    refused: list[BaseException] = []
    try:
        try:
            asyncio.run(async_run_robots(args.codes, passwords, url, out or sys.stdout))
        except* LoginRefused as group:
            refused = list(group.exceptions)
    except KeyboardInterrupt:
        pass
    given = args.password or args.passwords or os.environ.get("EPPARK_ROBOT_PASSWORD")
    hint = " (no password was given: the demo's was tried)" if fallback and not given else ""
    for refusal in refused:
        print(f"eppark sim robot: {refusal}{hint}", file=sys.stderr)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main_sim_robot())
