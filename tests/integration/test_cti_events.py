"""``POST /cti/{provider}/{key}``: generic and TiNet call-centre events, end to end.

Each event goes through the real view (test client), the provider's reader and the
routing: the robot's number finds the robot, its lot and gate and the car waiting
there; the seat finds the agent; an agent who does not serve the lot never gets the
call (nor its push); repeats change nothing; ``outbound_connected`` finds the callout.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from eppark.accounts.models import Role
from eppark.calls import callout
from eppark.calls.cti import generic, tinet
from eppark.calls.models import Call, CallCentre, CallDirection, CallEvent, CallState
from eppark.console import push
from eppark.devices.models import Robot
from eppark.stays.models import GateVisit
from tests.integration.factories import LotWorld, build_lot, call_centre, staff

pytestmark = pytest.mark.django_db

GENERIC_KEY = "k-cti-generic-0123456789"
TINET_KEY = "k-cti-tinet-0123456789"
GENERIC_SECRET = "generic-secret"
TINET_SECRET = "tinet-secret"
ROBOT_A = "14400000001"
ROBOT_B = "14400000002"
WAITING = "粤B11111"


@dataclass
class World:
    a: LotWorld
    b: LotWorld
    agent_a: User  # serves lot a
    agent_a2: User  # serves lot a too
    agent_b: User  # serves lot b only
    generic: CallCentre
    tinet: CallCentre
    visit: GateVisit
    client: Client

    def seat(self, agent: User) -> str:
        return str(agent.seat.number)


@pytest.fixture
def world(db: Any) -> World:
    agent_a = staff("kf-a", Role.AGENT, [])
    a = build_lot("caike", "彩科", WAITING, agent_a)
    agent_a.staff.lots.set([a.lot])
    agent_a2 = staff("kf-a2", Role.AGENT, [a.lot])
    agent_b = staff("kf-b", Role.AGENT, [])
    b = build_lot("futian", "福田", "粤B22222", agent_b)
    agent_b.staff.lots.set([b.lot])
    Robot.objects.filter(pk=b.robot.pk).update(phone=ROBOT_B)
    visit = GateVisit.objects.create(
        gate=a.exit,
        lot=a.lot,
        plate=WAITING,
        arrived_at=timezone.now() - timedelta(seconds=30),
        scenario="exit.temp_unpaid",
    )
    generic_centre = call_centre(
        GENERIC_KEY,
        name="通用",
        secret=GENERIC_SECRET,
        callout_url="http://127.0.0.1:9/callout",
    )
    tinet_centre = call_centre(TINET_KEY, name="天润", provider="tinet", secret=TINET_SECRET)
    return World(a, b, agent_a, agent_a2, agent_b, generic_centre, tinet_centre, visit, Client())


def generic_body(event: str, call_id: str = "c-1", **fields: str) -> bytes:
    data = {
        "event": event,
        "call_id": call_id,
        "caller": ROBOT_A,
        "callee": "4008001234",
        "seat": "",
        "at": timezone.now().isoformat(),
        **fields,
    }
    return json.dumps(data).encode()


def post_generic(
    world: World, body: bytes, *, key: str = GENERIC_KEY, secret: str = GENERIC_SECRET
) -> Any:
    headers = {generic.SIGNATURE_HEADER: generic.signature(secret, body)} if secret else {}
    return world.client.post(
        f"/cti/generic/{key}", data=body, content_type="application/json", headers=headers
    )


def post_tinet(
    world: World,
    params: dict[str, str],
    *,
    key: str = TINET_KEY,
    secret: str = TINET_SECRET,
    now: datetime | None = None,
    body: bytes = b"",
) -> Any:
    path = f"/cti/tinet/{key}"
    query = (
        tinet.signed_params(
            "AK", secret, "POST", "testserver", path, now or timezone.now(), params=params
        )
        if secret
        else params
    )
    return world.client.post(
        f"{path}?{urlencode(query)}", data=body, content_type="application/x-www-form-urlencoded"
    )


def tinet_params(event: str, seat: str = "", call_id: str = "t-1", **more: str) -> dict[str, str]:
    return {
        "customerNumber": ROBOT_A,
        "hotline": "4008001234",
        "cno": seat,
        "mainUniqueId": call_id,
        "event": event,
        **more,
    }


def state() -> tuple[list[Any], list[Any]]:
    return list(Call.objects.order_by("pk").values()), list(CallEvent.objects.values())


@pytest.fixture
def desk_pushes() -> Iterator[Callable[[str], list[dict[str, Any]]]]:
    """What each channel-layer group received (each group read once)."""
    layer = get_channel_layer()
    assert layer is not None
    channels: dict[str, str] = {}

    def listen(group: str) -> None:
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(group, channel)
        channels[group] = channel

    def received(group: str) -> list[dict[str, Any]]:
        return async_to_sync(_drain)(layer, channels[group])

    received.listen = listen  # type: ignore[attr-defined]
    yield received
    async_to_sync(layer.flush)()


async def _drain(layer: Any, channel: str) -> list[dict[str, Any]]:
    """Every message waiting on ``channel`` (none more within 0.2 s)."""
    import asyncio

    messages: list[dict[str, Any]] = []
    while True:
        try:
            async with asyncio.timeout(0.2):
                messages.append(await layer.receive(channel))
        except TimeoutError:
            return messages


# --- refusals -------------------------------------------------------------------------------


def test_a_wrong_key_or_provider_is_404_and_changes_nothing(world: World) -> None:
    before = state()
    assert post_generic(world, generic_body("ringing"), key="nope").status_code == 404
    assert post_tinet(world, tinet_params("ringing"), key=GENERIC_KEY).status_code == 404
    assert (
        world.client.post(
            f"/cti/asterisk/{GENERIC_KEY}", data=b"{}", content_type="application/json"
        ).status_code
        == 404
    )
    assert world.client.get(f"/cti/generic/{GENERIC_KEY}").status_code == 405
    assert state() == before


def test_a_bad_signature_is_401_and_changes_nothing(world: World) -> None:
    before = state()
    body = generic_body("ringing")
    assert post_generic(world, body, secret="").status_code == 401
    assert post_generic(world, body, secret="wrong").status_code == 401
    assert post_tinet(world, tinet_params("ringing"), secret="").status_code == 401
    assert post_tinet(world, tinet_params("ringing"), secret="wrong").status_code == 401
    old = timezone.now() - timedelta(minutes=5)
    expired = post_tinet(world, tinet_params("ringing"), now=old)
    assert (expired.status_code, expired.json()["error"]) == (401, "signature expired")
    assert state() == before


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", generic_body("dancing"), generic_body("ringing", call_id="")],
)
def test_a_bad_generic_payload_is_400_and_changes_nothing(world: World, body: bytes) -> None:
    before = state()
    response = post_generic(world, body)
    assert response.status_code == 400
    assert response.json()["ok"] is False
    assert response.json()["error"]
    assert state() == before


def test_a_bad_tinet_payload_is_400(world: World) -> None:
    before = state()
    assert post_tinet(world, tinet_params("dancing")).status_code == 400
    assert post_tinet(world, {"event": "ringing"}).status_code == 400  # no call id
    assert post_tinet(world, tinet_params("ringing"), body=b"\xff").status_code == 400
    assert state() == before


# --- routing --------------------------------------------------------------------------------


def test_ringing_from_a_robot_makes_the_call_of_its_gate_and_car(world: World) -> None:
    seat = world.seat(world.agent_a)
    response = post_generic(world, generic_body("ringing", seat=seat))
    assert (response.status_code, response.json()) == (200, {"ok": True})
    call = Call.objects.get()
    assert (call.direction, call.state) == (CallDirection.INBOUND, CallState.RINGING)
    assert (call.robot, call.lot, call.gate) == (world.a.robot, world.a.lot, world.a.exit)
    assert (call.visit, call.plate) == (world.visit, WAITING)
    assert (call.agent, call.seat, call.caller) == (world.agent_a, seat, ROBOT_A)


def test_tinet_ringing_and_answer_in_query_and_form(world: World) -> None:
    seat = world.seat(world.agent_a)
    assert post_tinet(world, tinet_params("来电", seat)).status_code == 200
    form = urlencode(tinet_params("接听", world.seat(world.agent_a2))).encode()
    assert post_tinet(world, {}, body=form).status_code == 200
    call = Call.objects.get()
    assert (call.centre, call.gate, call.plate) == (world.tinet, world.a.exit, WAITING)
    assert (call.state, call.agent) == (CallState.ANSWERED, world.agent_a2)


def test_the_answering_seats_agent_takes_the_call(world: World) -> None:
    post_generic(world, generic_body("ringing", seat=world.seat(world.agent_a)))
    post_generic(world, generic_body("answered", seat=world.seat(world.agent_a2)))
    call = Call.objects.get()
    assert (call.state, call.agent, call.seat) == (
        CallState.ANSWERED,
        world.agent_a2,
        world.seat(world.agent_a2),
    )
    assert call.answered_at is not None
    # an agent of another lot answering (a misrouted transfer) does not take it
    post_generic(world, generic_body("hangup"))
    post_generic(world, generic_body("ringing", call_id="c-2", seat=world.seat(world.agent_a)))
    post_generic(world, generic_body("answered", call_id="c-2", seat=world.seat(world.agent_b)))
    second = Call.objects.get(call_id="c-2")
    assert (second.state, second.agent) == (CallState.ANSWERED, world.agent_a)
    assert Call.objects.get(call_id="c-1").state == CallState.ENDED


def test_a_seat_whose_agent_does_not_serve_the_lot_never_gets_the_call(
    world: World, desk_pushes: Any, django_capture_on_commit_callbacks: Any
) -> None:
    desk_pushes.listen(push.agent_group(world.agent_b.pk))
    desk_pushes.listen(push.lot_group(world.a.lot.pk))
    with django_capture_on_commit_callbacks(execute=True):
        post_generic(world, generic_body("ringing", seat=world.seat(world.agent_b)))
        post_generic(world, generic_body("answered", seat=world.seat(world.agent_b)))
    call = Call.objects.get()
    assert call.agent is None
    assert call.lot == world.a.lot
    assert desk_pushes(push.agent_group(world.agent_b.pk)) == []
    board = desk_pushes(push.lot_group(world.a.lot.pk))
    assert board
    assert all(m["call"] == call.pk for m in board)


def test_repeated_events_change_nothing(world: World) -> None:
    seat = world.seat(world.agent_a)
    post_generic(world, generic_body("ringing", seat=seat))
    post_generic(world, generic_body("answered", seat=seat))
    before = state()
    for event in ("ringing", "answered"):
        response = post_generic(world, generic_body(event, seat=world.seat(world.agent_a2)))
        assert response.status_code == 200
    assert state() == before
    assert post_tinet(world, tinet_params("ringing", seat)).status_code == 200
    assert post_tinet(world, tinet_params("ringing", seat)).status_code == 200
    assert Call.objects.filter(centre=world.tinet).count() == 1
    before = state()
    outbound = tinet_params("ringing", seat, call_id="t-9", callType="outbound")
    response = post_tinet(world, outbound)  # a callout's ringing: acknowledged, nothing kept
    assert (response.status_code, response.json()["ok"]) == (200, True)
    assert state() == before


def test_outbound_connected_opens_the_dialling_callout(world: World) -> None:
    seat = world.seat(world.agent_a)
    dialled = callout.place(world.a.exit, world.agent_a, seat)
    other = callout.place(world.b.exit, world.agent_b, world.seat(world.agent_b))
    assert (dialled.state, dialled.callee) == (CallState.DIALING, ROBOT_A)
    body = generic_body(
        "outbound_connected",
        call_id="out-1",
        caller="4008001234",
        callee=ROBOT_A,
        seat=seat,
        request_id=dialled.request_id,
    )
    assert post_generic(world, body).status_code == 200
    dialled.refresh_from_db()
    assert (dialled.state, dialled.call_id, dialled.agent) == (
        CallState.ANSWERED,
        "out-1",
        world.agent_a,
    )
    assert (dialled.gate, dialled.plate) == (world.a.exit, WAITING)
    other.refresh_from_db()
    assert other.state == CallState.DIALING
    assert Call.objects.count() == 2
    # TiNet's outbound answer (callType=outbound) finds a callout by its number
    tinet_call = callout.place(world.a.exit, world.agent_a, seat)
    Call.objects.filter(pk=tinet_call.pk).update(centre=world.tinet)
    params = tinet_params("answered", seat, call_id="t-out", callType="outbound")
    assert post_tinet(world, params).status_code == 200
    tinet_call.refresh_from_db()
    assert (tinet_call.state, tinet_call.call_id) == (CallState.ANSWERED, "t-out")
