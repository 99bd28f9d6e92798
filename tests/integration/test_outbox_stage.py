"""The outbox's single way in: ``stage`` writes the row and hands the command off at commit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from eppark.devices import outbox
from eppark.devices.models import Channel, Command, CommandState, Robot
from eppark.lots.models import Gate, Lot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def robot() -> Robot:
    lot = Lot.objects.create(code="caike", name="彩科", capacity=10)
    gate = Gate.objects.create(lot=lot, code="entry", name="入口", direction="entry")
    return Robot.objects.create(code="EP-0001", name="入口", lot=lot, gate=gate)


@pytest.fixture
def handed() -> Iterator[list[outbox.Outgoing]]:
    """What the in-process gateway would be handed."""
    got: list[outbox.Outgoing] = []
    listener: Callable[[Sequence[outbox.Outgoing]], None] = got.extend
    outbox.add_listener(listener)
    try:
        yield got
    finally:
        outbox.remove_listener(listener)


def stage(robot: Robot, cmd: str = "present", **args: Any) -> int:
    with connection.cursor() as cursor:
        return outbox.stage(
            cursor,
            channel=Channel.MQTT,
            cmd=cmd,
            args=args or {"display": {"kind": "face", "face": "smile"}, "light": "green"},
            now=timezone.now(),
            ttl=outbox.present_ttl(),
            robot_id=robot.pk,
            robot_code=robot.code,
        )


def test_a_command_is_handed_off_only_when_its_transaction_commits(
    robot: Robot, handed: list[outbox.Outgoing]
) -> None:
    with transaction.atomic():
        pk = stage(robot)
        assert handed == []  # not before the commit
    assert [item.pk for item in handed] == [pk]
    assert handed[0].topic == "ep/robots/EP-0001/commands"
    assert handed[0].present_to == "EP-0001"
    assert Command.objects.get(pk=pk).state == CommandState.PENDING


def test_a_rolled_back_savepoint_drops_its_command_and_later_ones_still_go(
    robot: Robot, handed: list[outbox.Outgoing]
) -> None:
    with transaction.atomic():
        try:
            with transaction.atomic():
                stage(robot)
                raise RuntimeError("the decision failed")
        except RuntimeError:
            pass
        kept = stage(robot, "open", reason="visitor")
    assert [item.pk for item in handed] == [kept]
    assert list(Command.objects.values_list("cmd", flat=True)) == ["open"]  # the prompt is gone
    with transaction.atomic():
        later = stage(robot)
    assert [item.pk for item in handed] == [kept, later]


def test_a_new_prompt_expires_the_robots_undelivered_one(robot: Robot) -> None:
    with transaction.atomic():
        first = stage(robot)
    with transaction.atomic():
        second = stage(robot)
    assert Command.objects.get(pk=first).state == CommandState.EXPIRED
    assert Command.objects.get(pk=second).state == CommandState.PENDING


def test_a_bad_command_is_refused_before_it_is_stored(robot: Robot) -> None:
    with pytest.raises(Exception, match="light"), transaction.atomic():
        stage(robot, display={"kind": "face", "face": "smile"}, light="purple")
    assert not Command.objects.exists()


def test_stage_outside_a_transaction_is_refused(robot: Robot) -> None:
    with pytest.raises(RuntimeError, match="atomic"):
        stage(robot)


def _locked_elsewhere(pk: int, locked: threading.Event, release: threading.Event) -> None:
    """Hold a row lock on command ``pk`` from another connection until ``release``."""
    try:
        with transaction.atomic():
            list(Command.objects.select_for_update().filter(pk=pk))
            locked.set()
            release.wait(30)
    finally:
        connection.close()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
def test_a_prompt_locked_by_the_gateway_does_not_hold_up_the_next_read(robot: Robot) -> None:
    from eppark.gateway import store

    with transaction.atomic():
        first = stage(robot)
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_locked_elsewhere, args=(first, locked, release))
    holder.start()
    try:
        assert locked.wait(30)
        # the gateway (another connection) holds the first prompt: a new read at this robot
        # stages its prompt at once instead of queueing behind that lock (a test waiting on
        # the lock would hang here until the thread let go, 30 s later)
        with transaction.atomic():
            second = stage(robot)
        store.mark_first_sent([first, second], timezone.now())  # skips the locked row
        states = dict(Command.objects.values_list("pk", "state"))
        assert states == {first: CommandState.PENDING, second: CommandState.SENT}
    finally:
        release.set()
        holder.join(30)


def _acked_elsewhere(pk: int, locked: threading.Event, release: threading.Event) -> None:
    """The gateway's ack batch, on another connection: the robot's done, committed on release."""
    try:
        with transaction.atomic():
            Command.objects.filter(pk=pk).update(state=CommandState.DONE, acked_at=timezone.now())
            locked.set()
            release.wait(5)
    finally:
        connection.close()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
def test_a_retry_recorded_as_the_ack_lands_never_undoes_the_ack(robot: Robot) -> None:
    from eppark.gateway import store

    with transaction.atomic():
        pk = stage(robot)
    store.mark_first_sent([pk], timezone.now())
    locked, release = threading.Event(), threading.Event()
    acker = threading.Thread(target=_acked_elsewhere, args=(pk, locked, release))
    acker.start()
    try:
        assert locked.wait(30)
        # the poll re-published it and records that, while the robot's done is being applied
        store.mark_sent([pk], timezone.now())
    finally:
        release.set()
        acker.join(30)
    command = Command.objects.get(pk=pk)
    assert command.state == CommandState.DONE  # not set back to sent (and later expired)
    assert command.acked_at is not None


def test_a_first_send_recorded_after_the_ack_keeps_the_ack(robot: Robot) -> None:
    from eppark.gateway import store

    with transaction.atomic():
        pk = stage(robot)
    sent = timezone.now()
    # robots answer within milliseconds; first sends are recorded in batches, after
    Command.objects.filter(pk=pk).update(state=CommandState.DONE, acked_at=sent)
    store.mark_first_sent([pk], sent)
    store.mark_sent([pk], sent)  # a retry the poll recorded late changes nothing either
    command = Command.objects.get(pk=pk)
    assert (command.state, command.sent_at, command.attempts) == (CommandState.DONE, sent, 1)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plan is PostgreSQL's")
@pytest.mark.parametrize(
    ("statement", "index"),
    [
        (outbox._SUPERSEDE_PRESENT_UNLOCKED, "command_pending_by_"),
        (outbox._WAITING_REPLY, "command_pending_by_"),
    ],
)
def test_lookups_of_pending_commands_use_their_index_in_a_prepared_plan(
    robot: Robot, statement: str, index: str
) -> None:
    # the statements are prepared after a few runs, and a prepared (generic) plan can use a
    # partial index only if the query names the state itself, not as a parameter
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute("SET LOCAL enable_seqscan = off")  # the test table is tiny
        cursor.execute(f"PREPARE lookup(bigint) AS {statement.replace('%s', '$1')}")
        try:
            cursor.execute("EXPLAIN EXECUTE lookup(1)")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE lookup")
    assert "$1" in plan  # a generic plan indeed
    assert index in plan, plan
