"""How commands reach the gateway from another process, and how batches of acks land.

A web process without a gateway of its own (``eppark serve --no-gateway``, or a
``--workers`` child) hands each staged robot command to the gateway process as a
PostgreSQL ``NOTIFY`` payload (``outbox.notice``); the gateway publishes it at once
(``outbox.from_notice``), without waiting for its poll of the outbox.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from eppark.devices import outbox
from eppark.devices.credentials import hash_password
from eppark.devices.models import (
    Command,
    CommandState,
    Robot,
    RobotEvent,
    RobotScreen,
)
from eppark.gateway import protocol, store
from eppark.gateway.service import Gateway
from eppark.lots.models import Gate, Lot
from eppark.sim.cameras import build_push
from eppark.sim.robot import SimRobot
from eppark.stays.models import GateVisit
from tests.integration import mqtt_fixtures
from tests.integration.factories import TARIFF, keyed_camera
from tests.integration.mqtt_fixtures import ROBOTS, TestBroker
from tests.integration.test_outbox_gateway import Loop, wait_until

mosquitto = mqtt_fixtures.mosquitto

CODE = "EP-0001"
SHANGHAI = ZoneInfo("Asia/Shanghai")
WELCOME = {"voice": "欢迎光临", "display": {"kind": "face", "face": "smile"}, "light": "green"}
PAY = {
    "voice": "请扫码缴费后出场",
    "display": {"kind": "text", "text": "请缴费"},
    "light": "yellow",
}
LONG_POLL = 30.0
"""The gateway's poll interval in the hand-off test: far beyond its deadline (``DEADLINE``)."""
DEADLINE = 15.0


# --- the NOTIFY payload ------------------------------------------------------------------------


def _outgoing(payload: str, present_to: str | None = CODE) -> outbox.Outgoing:
    return outbox.Outgoing(
        pk=4242,
        topic=protocol.topic(CODE, "commands"),
        payload=payload,
        expires_at=datetime(2026, 11, 27, 8, 0, 1, 250000, tzinfo=SHANGHAI),
        present_to=present_to,
    )


def test_a_notice_carries_the_command_whole() -> None:
    created = datetime(2026, 11, 27, 8, 0, tzinfo=SHANGHAI)
    wire = outbox.wire_payload("c0ffee", "present", created, 120_000, WELCOME)
    for item in (_outgoing(wire), _outgoing(wire, present_to=None)):
        text = outbox.notice(item)
        assert text
        assert len(text.encode()) <= outbox.NOTICE_MAX
        back = outbox.from_notice(text)
        assert back == item
        assert back is not None
        assert back.expires_at.utcoffset() == timedelta(hours=8)
        assert protocol.Command.from_json(back.payload).args.to_dict() == WELCOME
    utc = replace(_outgoing(wire), expires_at=datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC))
    assert outbox.from_notice(outbox.notice(utc)) == utc


def test_a_notice_too_long_for_postgresql_is_empty_and_means_poll() -> None:
    overhead = len(outbox.notice(_outgoing("")).encode())
    fits = _outgoing("x" * (outbox.NOTICE_MAX - overhead))
    assert len(outbox.notice(fits).encode()) == outbox.NOTICE_MAX
    assert outbox.from_notice(outbox.notice(fits)) == fits
    assert outbox.notice(_outgoing("x" * (outbox.NOTICE_MAX - overhead + 1))) == ""
    # the limit is in bytes: 3,000 Chinese characters are 9,000 bytes of UTF-8
    chinese = _outgoing(json.dumps({"voice": "请" * 3000}, ensure_ascii=False))
    assert len(json.dumps(chinese.payload, ensure_ascii=False)) < outbox.NOTICE_MAX
    assert outbox.notice(chinese) == ""
    assert outbox.from_notice("") is None


# --- a web-only worker's commands reach the robot through NOTIFY -------------------------------


class HandoffWorld:
    """One entry gate: robot EP-0001, a Hikvision camera, a gateway that seldom polls."""

    def __init__(self, broker: TestBroker) -> None:
        self.lot = Lot.objects.create(
            code="caike", name="彩科", capacity=50, tariff=TARIFF, temp_entry_confirmation=False
        )
        gate = Gate.objects.create(
            lot=self.lot, code="entry", name="entry", direction="entry", opening_channel="robot"
        )
        self.robot = Robot.objects.create(
            code=CODE,
            name="entry",
            lot=self.lot,
            gate=gate,
            mqtt_password_hash=hash_password(ROBOTS[CODE]),
        )
        self.camera = keyed_camera(
            "k-entry", vendor="hikvision", lot=self.lot, gate=gate, serial="sn-entry"
        )
        self.loop = Loop()
        # only the first poll (at connect) reads the outbox within a test's deadline
        self.gateway = Gateway(
            broker.url, password=broker.gateway_password, poll_interval=LONG_POLL
        )
        self.loop.start(self.gateway.run())
        self.sim = SimRobot(CODE, ROBOTS[CODE], broker.url, out=io.StringIO(), max_backoff=0.5)
        self.loop.start(self.sim.run())
        self.loop.run(self._online())

    async def _online(self) -> None:
        async with asyncio.timeout(20):
            await self.gateway.connected.wait()
            await self.sim.online.wait()

    def close(self) -> None:
        self.loop.close()


@pytest.fixture
def handoff_world(mosquitto: TestBroker) -> Iterator[HandoffWorld]:
    built = HandoffWorld(mosquitto)
    try:
        yield built
    finally:
        built.close()


def _database() -> dict[str, Any]:
    """psycopg connection parameters of the (test) database Django uses."""
    settings = connection.settings_dict
    params = {
        "dbname": settings["NAME"],
        "user": settings.get("USER"),
        "password": settings.get("PASSWORD"),
        "host": settings.get("HOST"),
        "port": settings.get("PORT"),
    }
    return {key: value for key, value in params.items() if value}


def _gateway_listens() -> bool:
    """Whether a session of this database is LISTENing on the outbox channel (idle after it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'idle' AND query = %s",
            [f"LISTEN {outbox.NOTIFY_CHANNEL}"],
        )
        return int(cursor.fetchone()[0]) >= 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="NOTIFY hand-off is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_web_only_workers_commands_reach_the_robot_by_notify(
    handoff_world: HandoffWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = handoff_world
    robot = world.robot
    # through the in-process hand-off first: once it is done, the gateway's poll at connect
    # is over too, and the next poll is LONG_POLL seconds away
    warm_up = outbox.present(robot, WELCOME, timezone.now())
    wait_until(
        lambda: Command.objects.get(pk=warm_up.pk).state == CommandState.DONE,
        timeout=DEADLINE,
        what="the warm-up prompt acked done",
    )
    wait_until(_gateway_listens, timeout=DEADLINE, what="the gateway LISTENs for NOTIFY")
    published = world.gateway.published
    polls: list[datetime] = []
    due_commands = store.due_commands

    def counted(now: datetime, limit: int = 200) -> list[outbox.Outgoing]:
        polls.append(now)
        return due_commands(now, limit)

    monkeypatch.setattr(store, "due_commands", counted)  # the gateway looks it up per poll

    with psycopg.connect(autocommit=True, **_database()) as spy:
        spy.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
        outbox.remove_listener(world.gateway.wake)  # this process is now a web-only worker
        try:
            # a visitor at the entry: welcome and open through the robot's relay
            push = build_push("hikvision", "sn-entry", "粤B88888", timezone.now(), plate_id=1)
            response = Client().post(
                "/devices/lpr/hikvision/k-entry", data=push.body, content_type=push.content_type
            )
            assert response.status_code == 200, response.content
        finally:
            outbox.add_listener(world.gateway.wake)
        notices = [n.payload for n in spy.notifies(timeout=DEADLINE, stop_after=2)]

    visit = GateVisit.objects.get(plate="粤B88888")
    staged = {c.pk: c for c in Command.objects.filter(visit=visit)}
    assert sorted(c.cmd for c in staged.values()) == ["open", "present"]
    # each command went out as its own NOTIFY payload, complete
    carried = [outbox.from_notice(text) for text in notices]
    assert {item.pk for item in carried if item is not None} == set(staged)
    for item in carried:
        assert item is not None
        command = staged[item.pk]
        assert item.topic == protocol.topic(CODE, "commands")
        assert protocol.Command.from_json(item.payload).cmd_id == command.cmd_id
        assert item.present_to == (CODE if command.cmd == "present" else None)

    wait_until(
        lambda: all(
            Command.objects.get(pk=pk).state == CommandState.DONE for pk in staged
        ),  # within DEADLINE, well before the next poll: only NOTIFY can have delivered them
        timeout=DEADLINE,
        what="the NOTIFY-handed commands acked done",
    )
    assert world.sim.opens == 1
    assert world.sim.screen.voice == "欢迎光临"
    present = next(c for c in staged.values() if c.cmd == "present")
    assert world.sim.screen.cmd_id == present.cmd_id
    wait_until(
        lambda: RobotScreen.objects.filter(robot=robot, cmd_id=present.cmd_id).exists(),
        timeout=DEADLINE,
        what="the robot's screen recorded",
    )
    assert world.gateway.published == published + 2
    assert polls == []  # published from the payloads, without reading the outbox


# --- batches of acks -----------------------------------------------------------------------------


def _robot() -> Robot:
    lot = Lot.objects.create(code="caike", name="彩科", capacity=50, tariff=TARIFF)
    gate = Gate.objects.create(lot=lot, code="exit", name="exit", direction="exit")
    return Robot.objects.create(code=CODE, name="exit", lot=lot, gate=gate)


def _sent_present(robot: Robot, args: dict[str, Any], now: datetime) -> Command:
    """A prompt staged and published (so a newer prompt does not supersede it)."""
    command = outbox.present(robot, args, now)
    store.mark_first_sent([command.pk], now)
    return command


def _ack(command: Command, status: str, at: datetime) -> tuple[str, bytes]:
    return (CODE, protocol.Ack(command.cmd_id, status, at).to_json().encode())


def _screen(robot: Robot) -> tuple[str, Any, str, str]:
    screen = RobotScreen.objects.get(robot=robot)
    return (screen.voice, screen.display, screen.light, screen.cmd_id)


def _now() -> datetime:
    """Now, to the millisecond (what an ack's time carries)."""
    now = timezone.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@pytest.mark.django_db
@pytest.mark.parametrize("order", ["accepted, done", "done, accepted"])
def test_accepted_and_done_in_one_batch_end_done_with_the_screen(order: str) -> None:
    robot = _robot()
    now = _now()
    command = _sent_present(robot, PAY, now)
    accepted = _ack(command, "accepted", now + timedelta(milliseconds=100))
    done = _ack(command, "done", now + timedelta(milliseconds=400))
    batch = [accepted, done] if order == "accepted, done" else [done, accepted]

    store.apply_acks(batch, now + timedelta(seconds=1))

    command.refresh_from_db()
    assert command.state == CommandState.DONE
    assert command.acked_at == now + timedelta(seconds=1)
    assert _screen(robot) == (PAY["voice"], PAY["display"], PAY["light"], command.cmd_id)
    assert RobotScreen.objects.get(robot=robot).since == now + timedelta(milliseconds=400)


@pytest.mark.django_db
def test_an_older_prompts_late_done_keeps_the_newer_screen() -> None:
    robot = _robot()
    now = _now()
    older = _sent_present(robot, WELCOME, now)
    newer = _sent_present(robot, PAY, now + timedelta(seconds=1))
    older_done = _ack(older, "done", now + timedelta(milliseconds=500))
    newer_done = _ack(newer, "done", now + timedelta(milliseconds=1500))

    # the older prompt's done ack arrives late (redelivered) in the same batch
    store.apply_acks([newer_done, older_done], now + timedelta(seconds=2))
    assert _screen(robot) == (PAY["voice"], PAY["display"], PAY["light"], newer.cmd_id)
    states = dict(Command.objects.values_list("cmd_id", "state"))
    assert states == {older.cmd_id: CommandState.DONE, newer.cmd_id: CommandState.DONE}

    # and again, alone in a batch of its own
    store.apply_acks([older_done], now + timedelta(seconds=3))
    assert _screen(robot) == (PAY["voice"], PAY["display"], PAY["light"], newer.cmd_id)
    assert RobotScreen.objects.get(robot=robot).since == now + timedelta(milliseconds=1500)


@pytest.mark.django_db
def test_an_open_the_server_gave_up_on_is_recorded_done_when_the_robot_says_it_ran() -> None:
    robot = _robot()
    now = _now()
    command = outbox.open_by_robot(robot, now, reason="visitor")
    store.mark_first_sent([command.pk], now)
    # the broker went away before the ack came back: past its time-to-live, the server
    # marks the open expired
    store.expire_overdue(now + outbox.open_ttl() + timedelta(seconds=1))
    command.refresh_from_db()
    assert command.state == CommandState.EXPIRED

    # a late "accepted" changes nothing; the robot's "done" (it ran in time, by its own
    # clock) is what happened at the gate, and the record says so
    store.apply_acks([_ack(command, "accepted", now)], now + timedelta(seconds=20))
    command.refresh_from_db()
    assert command.state == CommandState.EXPIRED
    store.apply_acks([_ack(command, "done", now)], now + timedelta(seconds=21))
    command.refresh_from_db()
    assert command.state == CommandState.DONE

    # and once done, nothing an ack says changes it
    store.apply_acks([_ack(command, "failed", now)], now + timedelta(seconds=22))
    command.refresh_from_db()
    assert command.state == CommandState.DONE


# --- nothing waits on the way out --------------------------------------------------------------


def _nodelay_by_port(port: int) -> list[int]:
    """TCP_NODELAY of every socket of this process connected to ``port`` (the broker)."""
    import os
    import socket

    flags = []
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))  # a duplicate; its family detected
        except OSError:  # closed meanwhile, or not a socket
            continue
        with sock:
            try:
                if sock.family not in (socket.AF_INET, socket.AF_INET6):
                    continue
                if sock.type != socket.SOCK_STREAM or sock.getpeername()[1] != port:
                    continue
                flags.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            except OSError:  # not a connected TCP socket
                continue
    return flags


@pytest.mark.django_db(transaction=True)
def test_the_gateway_and_the_robot_send_without_waiting_for_acks(
    handoff_world: HandoffWorld, mosquitto: TestBroker
) -> None:
    # Nagle's algorithm would hold each small packet until the one before is acknowledged:
    # up to 40 ms per command (or ack) on its way through the broker
    flags = _nodelay_by_port(mosquitto.port)
    assert len(flags) >= 2  # the gateway's session and the robot's
    assert all(flags), flags


@pytest.mark.django_db(transaction=True)
def test_a_hand_off_goes_out_while_the_dispatchers_database_thread_is_busy(
    handoff_world: HandoffWorld,
) -> None:
    world = handoff_world
    first = outbox.present(world.robot, WELCOME, timezone.now())
    wait_until(
        lambda: Command.objects.get(pk=first.pk).state == CommandState.DONE,
        timeout=DEADLINE,
        what="the first prompt acked done",
    )
    # hold the thread that polls the outbox and records sends, and ask for a poll, which
    # now waits for that thread: a hand-off must not wait behind either
    release = threading.Event()
    busy = world.loop.start(world.gateway._db(release.wait, DEADLINE))
    world.gateway.wake()
    try:
        command = outbox.present(world.robot, PAY, timezone.now())
        wait_until(
            lambda: world.sim.screen.cmd_id == command.cmd_id,
            timeout=DEADLINE / 2,
            what="the prompt shown while the gateway's database thread is held",
        )
        assert not busy.done()  # it was delivered while the thread was still held
    finally:
        release.set()
    busy.result(DEADLINE)
    wait_until(
        lambda: Command.objects.get(pk=command.pk).state == CommandState.DONE,
        timeout=DEADLINE,
        what="the prompt recorded done once the thread is free",
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="NOTIFY hand-off is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_the_notify_skips_the_wal_wait_but_the_reads_own_commit_never_does() -> None:
    robot = _robot()
    listeners = list(outbox._listeners)
    for listener in listeners:  # a web-only worker: commands go out by NOTIFY
        outbox.remove_listener(listener)
    try:
        with psycopg.connect(autocommit=True, **_database()) as spy:
            spy.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
            command = outbox.present(robot, WELCOME, timezone.now())
            [notice] = [n.payload for n in spy.notifies(timeout=DEADLINE, stop_after=1)]
    finally:
        for listener in listeners:
            outbox.add_listener(listener)
    carried = outbox.from_notice(notice)
    assert carried is not None
    assert carried.pk == command.pk
    # the NOTIFY's own commit was asynchronous: the setting was local to it, and the next
    # transaction on this connection (the next read's) waits for its WAL flush as always
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


def _event(kind: str = "screen_shown") -> tuple[str, bytes]:
    event = protocol.Event(f"{CODE}-{uuid.uuid4().hex}", _now(), protocol.ScreenShown("c-1"))
    assert event.type == kind
    return (CODE, event.to_json().encode())


@pytest.mark.django_db
def test_events_keep_a_robot_online_with_one_write_every_few_seconds() -> None:
    robot = _robot()
    first = _now()
    store.apply_events([_event()], first)
    robot.refresh_from_db()
    assert (robot.online, robot.last_seen_at) == (True, first)
    # a batch of events every 50 ms: the robot's row is not rewritten for each
    store.apply_events([_event(), _event()], first + timedelta(milliseconds=50))
    robot.refresh_from_db()
    assert robot.last_seen_at == first
    assert RobotEvent.objects.filter(robot=robot).count() == 3  # every event is recorded
    # its last will says offline: the next event says online again at once
    store.apply_status(CODE, protocol.OFFLINE.encode(), first + timedelta(seconds=1))
    assert not Robot.objects.get(pk=robot.pk).online
    later = first + timedelta(seconds=2)
    store.apply_events([_event()], later)
    robot.refresh_from_db()
    assert (robot.online, robot.last_seen_at) == (True, later)


@pytest.mark.django_db
def test_an_ack_records_the_send_its_first_send_record_missed() -> None:
    robot = _robot()
    now = _now()
    # published, but the batch that records first sends passed over it (an ack batch held
    # the row) or has not run yet: the robot's ack is proof enough that it went out
    command = outbox.present(robot, PAY, now)
    store.apply_acks([_ack(command, "done", now)], now + timedelta(seconds=1))
    command.refresh_from_db()
    assert command.state == CommandState.DONE
    assert command.sent_at == now + timedelta(seconds=1)
    # a send already recorded keeps its time
    later = outbox.present(robot, WELCOME, now)
    store.mark_first_sent([later.pk], now)
    store.apply_acks([_ack(later, "done", now)], now + timedelta(seconds=2))
    later.refresh_from_db()
    assert later.sent_at == now
