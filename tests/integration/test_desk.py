"""The agent desk (新版智能客服): the page, its actions over HTTP, the call's state, the socket.

Real requests through Django's test client (CSRF enforced where it matters) and the
real WebSocket consumer through Channels' communicator on the configured channel
layer (in-memory, or Redis when REDIS_URL is set).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from eppark.accounts.models import Role
from eppark.calls.models import Call, CallCentre, CallDirection, CallState
from eppark.console import cases, push
from eppark.console.desk_state import call_state
from eppark.console.models import AgentAction, DeskAction, Seat
from eppark.devices.models import Command, Robot, RobotScreen
from eppark.stays.models import GateVisit, Stay
from tests.integration.factories import LotWorld, build_lot, staff

pytestmark = pytest.mark.django_db


class WebsocketCommunicator:
    """A WebSocket client for an ASGI app (channels.testing needs daphne, not installed)."""

    def __init__(self, application: Any, path: str) -> None:
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "path": path,
            "query_string": b"",
            "headers": [],
        }
        self.application = application
        self.app: Any = None

    def _started(self) -> Any:
        if self.app is None:
            self.app = ApplicationCommunicator(self.application, self.scope)  # type: ignore[no-untyped-call]
        return self.app

    async def connect(self, timeout: float = 2) -> tuple[bool, Any]:
        app = self._started()
        await app.send_input({"type": "websocket.connect"})
        response = await app.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        return True, None

    async def receive_output(self, timeout: float = 2) -> Any:
        return await self._started().receive_output(timeout)

    async def receive_nothing(self, timeout: float = 0.2) -> bool:
        return bool(await self._started().receive_nothing(timeout))

    async def wait(self, timeout: float = 2) -> None:
        await self._started().wait(timeout)

    async def receive_json_from(self, timeout: float = 2) -> Any:
        response = await self._started().receive_output(timeout)
        assert response["type"] == "websocket.send", response
        return json.loads(response["text"])

    async def disconnect(self, code: int = 1000, timeout: float = 2) -> None:
        await self._started().send_input({"type": "websocket.disconnect", "code": code})
        await self._started().wait(timeout)


STRANGER = "粤B77777"


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    root = User.objects.create_superuser("root", password="pw-not-used")
    a = build_lot("caike", "彩科彩悦大厦", "粤B11111", root)
    b = build_lot("futian", "福田中心", "粤B99999", root)
    Robot.objects.filter(pk=b.robot.pk).update(phone="14400000002")
    GateVisit.objects.update(resolved_at=timezone.now(), resolution="opened")
    entry_robot = Robot.objects.create(
        code="EP-caike-in", name="彩科入口EP君", lot=a.lot, gate=a.entry, phone="14400000003"
    )
    centre = CallCentre.objects.create(provider="generic", name="呼叫中心", key_digest="d" * 64)
    agent = staff("kf-a", Role.AGENT, [a.lot])
    other = staff("kf-b", Role.AGENT, [a.lot])
    return {
        "a": a,
        "b": b,
        "entry_robot": entry_robot,
        "centre": centre,
        "agent": agent,
        "other": other,
        "agent_b": staff("kf-futian", Role.AGENT, [b.lot]),
        "operator": staff("op-a", Role.OPERATOR, [a.lot]),
        "root": root,
    }


def waiting(gate_world: LotWorld, gate: Any, plate: str, minutes: int = 0) -> GateVisit:
    return GateVisit.objects.create(
        gate=gate,
        lot=gate_world.lot,
        plate=plate,
        arrived_at=timezone.now() - timedelta(minutes=minutes),
        scenario="entry.temp_forbidden" if gate.direction == "entry" else "exit.temp_unpaid",
        expected_action="leave" if gate.direction == "entry" else "temp_order",
        photo=f"evidence/{gate_world.lot.code}/{plate}.jpg",
    )


def a_call(w: dict[str, Any], where: str, plate: str, agent: User | None) -> Call:
    lot: LotWorld = w["a"] if where != "b" else w["b"]
    gate = lot.entry if where == "entry" else lot.exit
    robot = w["entry_robot"] if where == "entry" else lot.robot
    visit = waiting(lot, gate, plate)
    return Call.objects.create(
        centre=w["centre"],
        call_id=f"c-{where}-{plate}-{Call.objects.count()}",
        direction=CallDirection.INBOUND,
        state=CallState.ANSWERED,
        caller=robot.phone,
        seat=cases.seat_of(agent) if agent is not None else "",
        agent=agent,
        robot=robot,
        lot=lot.lot,
        gate=gate,
        visit=visit,
        plate=plate,
        started_at=timezone.now(),
    )


def client_for(user: User | None, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    if user is not None:
        client.force_login(user)
    return client


def post(client: Client, name: str, call: Call | None = None, **data: Any) -> Any:
    url = reverse(f"console:{name}", args=[call.pk] if call is not None else [])
    return client.post(url, json.dumps(data), content_type="application/json")


# --- the page ------------------------------------------------------------------------------------


def test_desk_page_is_for_agents(world: dict[str, Any]) -> None:
    page = client_for(world["agent"]).get("/console/")
    assert page.status_code == 200
    html = page.content.decode()
    for label in (
        "开闸",
        "发送到显示屏",
        "临停快速码推送或出示付款码",
        "访客登记放行",
        "异常开闸",
        "关单",
    ):
        assert label in html
    assert 'id="desk-hello"' in html
    assert "desk.js" in html

    english = client_for(world["agent"])
    english.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert "Plate number" in english.get("/console/").content.decode()

    refused = client_for(world["operator"]).get("/console/")
    assert refused.status_code == 403
    assert 'data-testid="desk-forbidden"' in refused.content.decode()

    anonymous = client_for(None).get("/console/")
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]
    assert client_for(None).get(reverse("console:desk_state")).status_code == 403


# --- the call's state ----------------------------------------------------------------------------


def test_entry_state_in_words(world: dict[str, Any]) -> None:
    call = a_call(world, "entry", STRANGER, world["agent"])
    state = call_state(call, world["agent"], timezone.now())
    overview = state["overview"]
    assert overview["number"] == "14400000003"
    assert overview["robot"]["code"] == "EP-caike-in"
    assert overview["lot"]["name"] == "彩科彩悦大厦"
    assert overview["gate"]["name"] == "彩科彩悦大厦入口"
    assert overview["gate"]["direction"] == "entry"
    assert overview["mine"] is True
    assert overview["taken_by"] == "kf-a"
    vehicle = state["vehicle"]
    assert vehicle["reason"] == "临停车禁止进场"
    assert vehicle["has_pass"] is False
    assert vehicle["stay"] is None
    enabled = {a["label"] for a in state["actions"] if a["enabled"]}
    assert enabled == {"访客登记放行", "异常开闸", "关单"}
    assert state["scene"]["gate_photo"] == f"/evidence/gate-visit/{call.visit_id}/photo/"
    assert state["scene"]["car_photo"] == state["scene"]["gate_photo"]
    assert state["fuzzy"] is None
    # another agent of the lot sees it taken, with no action enabled
    seen = call_state(call, world["other"], timezone.now())
    assert seen["overview"]["mine"] is False
    assert not seen["can_act"]
    assert not any(a["enabled"] for a in seen["actions"])


def test_exit_state_shows_the_stay_and_the_fee(world: dict[str, Any]) -> None:
    a: LotWorld = world["a"]
    entered = timezone.now() - timedelta(hours=3, minutes=10)
    stay = Stay.objects.create(
        lot=a.lot,
        plate=STRANGER,
        entered_as="temp",
        entered_at=entered,
        entry_gate=a.entry,
        entry_photo="evidence/caike/in.jpg",
    )
    call = a_call(world, "exit", STRANGER, world["agent"])
    state = call_state(call, world["agent"], timezone.now())
    vehicle = state["vehicle"]
    assert vehicle["stay"]["due"].startswith("¥")
    assert vehicle["stay"]["owes"] is True
    assert vehicle["reason"] == "临停车未缴费出场"
    assert state["scene"]["car_photo"] == f"/evidence/stay/{stay.pk}/entry_photo/"
    enabled = [a["action"] for a in state["actions"] if a["enabled"]]
    assert enabled == ["send_to_display", "quick_pay", "abnormal_open", "close"]

    # the pass holder's car: a valid pass, nothing due
    held = a_call(world, "exit", "粤B11111", world["agent"])
    vehicle = call_state(held, world["agent"], timezone.now())["vehicle"]
    assert vehicle["has_pass"] is True
    assert vehicle["expired_by"] == ""
    assert vehicle["valid_until_text"]


def test_no_entry_record_offers_the_cars_inside(world: dict[str, Any]) -> None:
    call = a_call(world, "exit", "粤B11117", world["agent"])
    state = call_state(call, world["agent"], timezone.now())
    fuzzy = state["fuzzy"]
    assert fuzzy["notice"].startswith("未找到该车辆的进场记录")
    assert "1 条" in fuzzy["notice"]
    (candidate,) = fuzzy["candidates"]
    assert candidate["plate"] == "粤B11111"
    assert candidate["stay"] == world["a"].stay.pk
    response = post(
        client_for(world["agent"]), "desk_confirm_vehicle", call, stay=candidate["stay"]
    )
    assert response.status_code == 200, response.content
    assert response.json()["call"]["picked_stay"] == candidate["stay"]


# --- the actions ---------------------------------------------------------------------------------


def test_actions_are_authorised(world: dict[str, Any]) -> None:
    call = a_call(world, "entry", STRANGER, world["agent"])
    # another agent of the same lot: taken
    taken = post(client_for(world["other"]), "desk_open", call)
    assert taken.status_code == 403
    assert "kf-a" in taken.json()["error"]
    # an agent of another lot
    assert post(client_for(world["agent_b"]), "desk_take", call).status_code == 403
    # an operator
    assert post(client_for(world["operator"]), "desk_close", call).status_code == 403
    # no seat
    Seat.objects.filter(agent=world["agent"]).update(agent=None)
    seatless = post(client_for(world["agent"]), "desk_send_to_display", call)
    assert seatless.status_code == 403
    Seat.objects.filter(number=f"10{world['agent'].pk:02d}").update(agent=world["agent"])
    # an action the rules do not allow for this car
    refused = post(client_for(world["agent"]), "desk_open", call)
    assert refused.status_code == 400
    assert "开闸" in refused.json()["error"]
    # CSRF is checked
    strict = client_for(world["agent"], csrf=True)
    assert post(strict, "desk_close", call).status_code == 403
    assert not AgentAction.objects.filter(call=call).exists()


def test_visitor_release_and_close(world: dict[str, Any]) -> None:
    call = a_call(world, "entry", STRANGER, world["agent"])
    client = client_for(world["agent"])
    bad = post(client, "desk_visitor_release", call, phone="123", reason="业主客人")
    assert bad.status_code == 400
    assert bad.json()["error"]
    done = post(
        client, "desk_visitor_release", call, phone="13800000000", reason="1单元303业主客人"
    )
    assert done.status_code == 200, done.content
    action = AgentAction.objects.get(call=call, action=DeskAction.VISITOR_RELEASE)
    assert action.detail["phone"] == "13800000000"
    assert Command.objects.filter(robot=world["entry_robot"], cmd="present").exists()
    closed = post(client, "desk_close", call)
    assert closed.status_code == 200
    assert closed.json()["call"]["open"] is False


def test_query_corrects_the_plate(world: dict[str, Any]) -> None:
    call = a_call(world, "entry", STRANGER, world["agent"])
    client = client_for(world["agent"])
    assert post(client, "desk_query", call, plate="not a plate").status_code == 400
    answer = post(client, "desk_query", call, plate="粤B11111").json()["call"]
    assert answer["plate"] == "粤B11111"
    assert answer["vehicle"]["has_pass"] is True
    assert next(a["action"] for a in answer["actions"] if a["enabled"]) == "open"


def test_seat_binding(world: dict[str, Any]) -> None:
    client = client_for(world["agent"])
    bound = post(client, "desk_seat", seat="2001")
    assert bound.status_code == 200
    assert bound.json()["seat"] == "2001"
    assert Seat.objects.get(number="2001").agent == world["agent"]
    assert not Seat.objects.filter(
        number=f"10{world['agent'].pk:02d}", agent__isnull=False
    ).exists()
    taken = post(client_for(world["other"]), "desk_seat", seat="2001")
    assert taken.status_code == 400
    assert "2001" in taken.json()["error"]
    assert post(client, "desk_seat", seat="").status_code == 400


# --- the socket ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _one_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The consumer's database work runs on the test's own thread and connection (inside its
    transaction); Channels would close that connection around each call, as it must in a server."""
    import channels.db

    monkeypatch.setattr(channels.db, "close_old_connections", lambda: None)


def test_socket_refuses_non_agents(world: dict[str, Any]) -> None:
    from eppark.console.consumers import DeskConsumer

    async def run(user: Any) -> Any:
        communicator = WebsocketCommunicator(DeskConsumer.as_asgi(), "/ws/console/")
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        closed = await communicator.receive_output(timeout=2)
        await communicator.disconnect(code=4403)
        return connected, closed

    for user in (world["operator"], None):
        from django.contrib.auth.models import AnonymousUser

        _connected, closed = async_to_sync(run)(user or AnonymousUser())
        assert closed == {"type": "websocket.close", "code": 4403}


REDIS_TEST_DB = "redis://127.0.0.1:6379/14"


@pytest.fixture(params=["in-memory", "redis"])
def layer_kind(request: pytest.FixtureRequest, settings: Any) -> str:
    """The channel layer the desk runs on: in memory (the demo) or Redis (production)."""
    if request.param == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_TEST_DB)
        client.flushdb()
        client.close()
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [REDIS_TEST_DB]},
            }
        }
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return str(request.param)


def test_socket_pushes_only_the_lots_calls(world: dict[str, Any], layer_kind: str) -> None:
    from eppark.console.consumers import DeskConsumer

    mine = a_call(world, "entry", STRANGER, world["agent"])
    theirs = a_call(world, "b", "粤B99999", world["agent_b"])

    elsewhere = a_call(world, "exit", "粤B11111", world["other"])  # another agent's
    robot = world["entry_robot"]

    def change() -> None:
        Call.objects.filter(pk=mine.pk).update(plate="粤B11111")

    def show() -> None:
        RobotScreen.objects.create(
            robot=robot,
            voice="欢迎光临",
            display={"kind": "face", "face": "smile"},
            light="green",
            since=timezone.now(),
            cmd_id="c-1",
        )

    def about(pk: int) -> dict[str, Any]:
        return {"type": "desk.message", "kind": "call", "call": pk}

    async def run() -> list[Any]:
        communicator = WebsocketCommunicator(DeskConsumer.as_asgi(), "/ws/console/")
        communicator.scope["user"] = world["agent"]
        connected, _ = await communicator.connect()
        assert connected
        hello = await communicator.receive_json_from(timeout=5)
        layer = get_channel_layer()
        expected = "RedisChannelLayer" if layer_kind == "redis" else "InMemoryChannelLayer"
        assert type(layer).__name__ == expected
        # another lot's call, even sent to this agent's own group, is never forwarded;
        # a call another agent holds that this desk never showed is none of its business
        await layer.group_send(push.agent_group(world["agent"].pk), about(theirs.pk))
        await layer.group_send(push.lot_group(world["b"].lot.pk), about(theirs.pk))
        await layer.group_send(push.lot_group(world["a"].lot.pk), about(elsewhere.pk))
        # a change of this desk's call, announced to the agent and to the lot: sent once
        await sync_to_async(change)()
        await layer.group_send(push.agent_group(world["agent"].pk), about(mine.pk))
        await layer.group_send(push.lot_group(world["a"].lot.pk), about(mine.pk))
        pushed = await communicator.receive_json_from(timeout=5)
        nothing = await communicator.receive_nothing(timeout=0.3)
        await sync_to_async(show)()
        await layer.group_send(
            push.robot_group(robot.pk),
            {"type": "desk.message", "kind": "screen", "robot": robot.pk},
        )
        screen = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return [hello, pushed, nothing, screen]

    hello, pushed, nothing, screen = async_to_sync(run)()
    assert hello["type"] == "hello"
    assert [c["id"] for c in hello["calls"]] == [mine.pk]
    assert hello["seat"] == cases.seat_of(world["agent"])
    assert pushed["type"] == "call"
    assert pushed["call"]["id"] == mine.pk
    assert pushed["call"]["plate"] == "粤B11111"
    assert nothing is True
    assert screen["call"]["id"] == mine.pk
    assert screen["call"]["scene"]["screen"]["voice"] == "欢迎光临"


def test_the_robot_screen_reaches_the_open_desk(
    world: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    """An action goes to the robot through the outbox; the robot's ack becomes its screen,
    and the gateway's push brings it to the open desk's mirror of that robot."""
    from eppark.console.consumers import DeskConsumer
    from eppark.gateway import protocol, store

    call = a_call(world, "entry", STRANGER, world["agent"])
    robot = world["entry_robot"]

    def act_and_ack() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            cases.visitor_release(call, world["agent"], "13800000000", "业主客人")
        command = Command.objects.get(robot=robot, cmd="present")
        ack = protocol.Ack(command.cmd_id, "done", timezone.now()).to_json().encode()
        with django_capture_on_commit_callbacks(execute=True):
            store.apply_acks([(robot.code, ack)], timezone.now())

    async def run() -> list[Any]:
        communicator = WebsocketCommunicator(DeskConsumer.as_asgi(), "/ws/console/")
        communicator.scope["user"] = world["agent"]
        await communicator.connect()
        hello = await communicator.receive_json_from(timeout=5)
        await sync_to_async(act_and_ack)()
        seen = []
        while True:
            message = await communicator.receive_json_from(timeout=5)
            seen.append(message)
            screen = message["call"]["scene"]["screen"]
            if screen["voice"] == "欢迎光临":
                break
        await communicator.disconnect()
        return [hello, seen]

    hello, seen = async_to_sync(run)()
    assert hello["calls"][0]["scene"]["screen"]["display"] is None
    last = seen[-1]["call"]["scene"]["screen"]
    assert last["display"] == {"kind": "face", "face": "smile"}
    assert last["light"] == "green"


def test_callout_from_the_board(world: dict[str, Any]) -> None:
    CallCentre.objects.filter(pk=world["centre"].pk).update(callout_url="http://127.0.0.1:9/x")
    a: LotWorld = world["a"]
    client = client_for(world["agent"])
    answer = post(client, "desk_callout", gate=a.exit.pk)
    assert answer.status_code == 200, answer.content
    state = answer.json()["call"]
    assert state["overview"]["state"] == "dialing"
    assert state["overview"]["number"] == a.robot.phone
    assert AgentAction.objects.filter(action=DeskAction.CALL_OUT, gate=a.exit).count() == 1
    # another lot's gate, an agent with no seat: refused, nothing recorded
    assert post(client, "desk_callout", gate=world["b"].exit.pk).status_code == 403
    Seat.objects.filter(agent=world["other"]).update(agent=None)
    assert post(client_for(world["other"]), "desk_callout", gate=a.exit.pk).status_code == 403
    assert post(client, "desk_callout", gate="x").status_code == 400
    assert Call.objects.filter(direction=CallDirection.OUTBOUND).count() == 1


def test_captured_photos_show_through_staff_links(world: dict[str, Any]) -> None:
    from eppark.console.models import CapturedPhoto, EvidenceKind

    call = a_call(world, "exit", "粤B11111", world["agent"])
    now = timezone.now()
    shots = [
        CapturedPhoto.objects.create(
            call=call,
            lot=world["a"].lot,
            kind=kind,
            file=f"evidence/caike/desk/{kind}.png",
            taken_at=now,
        )
        for kind in (EvidenceKind.ID_DOCUMENT, EvidenceKind.SCENE)
    ]
    state = call_state(call, world["agent"], now)
    assert state["photos"]["id"][0]["url"] == f"/evidence/desk-photo/{shots[0].pk}/file/"
    assert state["photos"]["scene"][0]["id"] == shots[1].pk
    assert state["scene"]["environment"]["url"] == f"/evidence/desk-photo/{shots[1].pk}/file/"
    client = client_for(world["agent"])
    kept = post(
        client,
        "desk_abnormal_open",
        call,
        reason="special_vehicle",
        note="警车粤B11111",
        id_photos=[shots[0].pk],
        scene_photos=[shots[1].pk],
    )
    assert kept.status_code == 200, kept.content
    missing = a_call(world, "exit", "粤B11111", world["agent"])
    refused = post(client, "desk_abnormal_open", missing, reason="special_vehicle", note="x")
    assert refused.status_code == 400
    assert "ID" in refused.json()["error"] or "证件" in refused.json()["error"]


def test_an_untaken_call_shows_taken_once_another_agent_takes_it(
    world: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    from eppark.console.consumers import DeskConsumer

    call = a_call(world, "entry", STRANGER, None)
    Call.objects.filter(pk=call.pk).update(state=CallState.RINGING)

    def take() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            cases.take(call, world["agent"])

    async def run() -> list[Any]:
        communicator = WebsocketCommunicator(DeskConsumer.as_asgi(), "/ws/console/")
        communicator.scope["user"] = world["other"]
        await communicator.connect()
        hello = await communicator.receive_json_from(timeout=5)
        await sync_to_async(take)()
        taken = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return [hello, taken]

    hello, taken = async_to_sync(run)()
    (offered,) = hello["calls"]
    assert offered["can_take"] is True
    assert offered["overview"]["taken_by"] == ""
    state = taken["call"]
    assert state["overview"]["mine"] is False
    assert state["overview"]["taken_by"] == "kf-a"
    assert state["can_take"] is False
    assert not any(action["enabled"] for action in state["actions"])
    # and the other agent's HTTP request is refused in words
    refused = post(client_for(world["other"]), "desk_take", call)
    assert refused.status_code == 403
    assert "kf-a" in refused.json()["error"]


def test_lot_search_on_the_home(world: dict[str, Any]) -> None:
    client = client_for(world["agent"])
    url = reverse("console:desk_lots")
    (card,) = client.get(url, {"q": "彩科"}).json()["lots"]
    assert card["name"] == "彩科彩悦大厦"
    assert card["free_spaces"] == 9  # capacity 10, one car inside
    assert card["visitors_allowed"] is False
    assert card["tariff_text"].startswith("30分钟内免费")
    # only the lots the agent serves; other staff are refused
    assert client.get(url, {"q": "福田"}).json()["lots"] == []
    assert client_for(world["operator"]).get(url, {"q": "彩科"}).status_code == 403
    assert 'id="lot-search"' in client.get("/console/").content.decode()


def test_asking_the_robot_for_id_photos(world: dict[str, Any]) -> None:
    call = a_call(world, "exit", "粤B11111", world["agent"])
    client = client_for(world["agent"])
    asked = post(client, "desk_capture_id", call, count=2)
    assert asked.status_code == 200, asked.content
    command = Command.objects.get(robot=world["a"].robot, cmd="capture_id")
    assert command.args == {"count": 2}
    assert post(client, "desk_capture_id", call, count=9).status_code == 400
    assert post(client, "desk_capture_id", call, count="x").status_code == 400
    assert post(client_for(world["other"]), "desk_capture_id", call).status_code == 403
    assert Command.objects.filter(cmd="capture_id").count() == 1


CALL_ENDPOINTS: dict[str, dict[str, Any]] = {
    "desk_take": {},
    "desk_query": {"plate": "粤B11111"},
    "desk_open": {},
    "desk_send_to_display": {},
    "desk_quick_pay": {},
    "desk_visitor_release": {"phone": "13800000000", "reason": "业主客人"},
    "desk_abnormal_open": {"reason": "special_vehicle", "note": "警车"},
    "desk_confirm_vehicle": {"stay": 1},
    "desk_capture_id": {},
    "desk_capture_scene": {},
    "desk_close": {},
}


def test_every_call_endpoint_is_authorised(world: dict[str, Any]) -> None:
    call = a_call(world, "entry", STRANGER, world["agent"])
    seatless = staff("kf-noseat", Role.AGENT, [world["a"].lot])
    Seat.objects.filter(agent=seatless).delete()
    held_without_seat = a_call(world, "entry", STRANGER, seatless)
    for name, body in CALL_ENDPOINTS.items():
        for who in ("agent_b", "other", "operator"):  # another lot, another agent's call, no agent
            answer = post(client_for(world[who]), name, call, **body)
            assert answer.status_code == 403, (name, who, answer.content)
            assert answer.json()["error"]
        if name != "desk_close":  # ending a case needs no seat
            no_seat = post(client_for(seatless), name, held_without_seat, **body)
            assert no_seat.status_code == 403, (name, no_seat.content)
        strict = client_for(world["agent"], csrf=True)
        assert post(strict, name, call, **body).status_code == 403, name
        assert (
            client_for(world["agent"]).get(reverse(f"console:{name}", args=[call.pk])).status_code
            == 405
        )
    call.refresh_from_db()
    assert call.plate == STRANGER
    assert call.closed_at is None
    assert not AgentAction.objects.filter(call=call).exists()
