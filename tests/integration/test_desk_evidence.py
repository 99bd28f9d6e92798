"""Evidence taken during a call: ID photos over MQTT events, scene snapshots through Ezviz.

The call arrives the real way (a generic call-centre event from the robot's number,
answered at the agent's seat); photos come back as the robot sends them (``id_photo``
events through the gateway's ``apply_events``), inline or by URL from a real HTTP
server; snapshots come from the Ezviz stand-in over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone, translation

from eppark.calls.models import Call, CallCentre
from eppark.console import cases, evidence
from eppark.console.cases import Forbidden
from eppark.console.models import AgentAction, CapturedPhoto, DeskAction, EvidenceKind
from eppark.devices import ezviz
from eppark.devices.keys import key_digest
from eppark.devices.models import Camera, Command, RobotEvent
from eppark.domain import desk
from eppark.gateway import protocol, store
from eppark.records.errors import Refused
from eppark.sim.ezviz import ENVIRONMENT, EzvizStandIn, demo_platform
from eppark.sim.picture import CAR_JPEG, id_card_png
from tests.integration.factories import FullLot, build_full_lot

pytestmark = pytest.mark.django_db

CC_KEY = "k-cc-evidence"


# --- helpers -------------------------------------------------------------------------------------


class Pictures:
    """A real HTTP server the robot "uploaded" photos to: path → (status, body)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, bytes]] = {}
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, body = files.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def pictures() -> Iterator[Pictures]:
    server = Pictures()
    yield server
    server.close()


@pytest.fixture
def lots(settings: Any) -> tuple[FullLot, FullLot]:
    now = timezone.now()
    a = build_full_lot("caike", "彩科彩悦大厦", "粤B11111", "13900000001", now)
    b = build_full_lot("futian", "福田中心", "粤B99999", "13900000002", now)
    CallCentre.objects.create(provider="generic", name="呼叫中心", key_digest=key_digest(CC_KEY))
    return a, b


def ring(lot: FullLot, call_id: str | None = None) -> Call:
    """A call from the lot's robot, answered at its agent's seat (the generic provider)."""
    call_id = call_id or uuid.uuid4().hex
    robot, seat = lot.world.robot, lot.agent.seat.number
    robot.refresh_from_db()
    client = Client()
    for kind in ("ringing", "answered"):
        body = {
            "event": kind,
            "call_id": call_id,
            "caller": robot.phone,
            "callee": "4000000000",
            "seat": seat,
            "at": timezone.now().isoformat(),
        }
        response = client.post(
            f"/cti/generic/{CC_KEY}", json.dumps(body), content_type="application/json"
        )
        assert response.status_code == 200, response.content
    call = Call.objects.get(call_id=call_id)
    assert call.agent_id == lot.agent.pk
    assert call.gate_id == lot.world.exit.pk
    return call


def id_photo_event(code: str, **data: Any) -> tuple[str, bytes]:
    """An ``id_photo`` event as the robot publishes it."""
    event = protocol.Event(
        f"{code}-{uuid.uuid4().hex}", timezone.now(), protocol.IdPhoto(**data)
    ).to_json()
    return code, event.encode()


def send(*events: tuple[str, bytes]) -> None:
    """The gateway applies a batch of robot events."""
    store.apply_events(list(events), timezone.now())


def listening(group: str) -> Callable[[], list[dict[str, Any]]]:
    """Subscribe a channel to ``group`` (the real channel layer); call the result once to
    read what was pushed to it."""
    layer: Any = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)

    async def drain() -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(await asyncio.wait_for(layer.receive(channel), 0.3))
            except TimeoutError:
                return out

    return lambda: async_to_sync(drain)()


# --- ID photos -----------------------------------------------------------------------------------


def test_capture_id_prompts_the_driver_and_stores_the_photos_for_the_call(
    lots: tuple[FullLot, FullLot],
    pictures: Pictures,
    django_capture_on_commit_callbacks: Any,
) -> None:
    a, b = lots
    call = ring(a)
    pushed = listening(f"agent.{a.agent.pk}")
    command = evidence.capture_id(call, a.agent, count=2)

    # one transaction: the C3b prompt, then the capture, and the audit naming the command
    prompt = Command.objects.get(robot=a.world.robot, cmd="present", args__voice__isnull=False)
    assert prompt.args["voice"] == desk.SHOW_ID_VOICE
    assert prompt.args["display"] == {"kind": "text", "text": desk.SHOW_ID_TEXT}
    assert prompt.args["light"] == "green"
    assert command.cmd == "capture_id"
    assert command.args == {"count": 2}
    assert command.expires_at - command.created_at == timedelta(seconds=30)
    assert command.requested_by_id == a.agent.pk
    audit = AgentAction.objects.get(action=DeskAction.CAPTURE_ID)
    assert audit.detail["cmd_id"] == command.cmd_id
    assert audit.detail["count"] == 2
    assert audit.call_id == call.pk
    assert audit.gate_id == a.world.exit.pk

    # the robot answers: one photo inline (the simulated ID camera's PNG), one by URL (a JPEG)
    inline = id_card_png(3)
    pictures.files["/up/id-2.jpg"] = (200, CAR_JPEG)
    code = a.world.robot.code
    first = id_photo_event(
        code, photo=inline, content_type="image/png", cmd_id=command.cmd_id, index=1
    )
    second = id_photo_event(code, url=pictures.url("/up/id-2.jpg"), cmd_id=command.cmd_id, index=2)
    with django_capture_on_commit_callbacks(execute=True):
        send(first, second)
        send(first)  # a QoS 1 redelivery: stored once

    photos = list(CapturedPhoto.objects.filter(call=call).order_by("pk"))
    assert [p.kind for p in photos] == [EvidenceKind.ID_DOCUMENT] * 2
    assert [p.cmd_id for p in photos] == [command.cmd_id] * 2
    assert all(p.lot_id == a.world.lot.pk for p in photos)
    names = [str(p.file.name) for p in photos]
    assert names[0].endswith(".png")
    assert names[1].endswith(".jpg")
    with default_storage.open(names[0], "rb") as handle:
        assert handle.read() == inline
    with default_storage.open(names[1], "rb") as handle:
        assert handle.read() == CAR_JPEG
    assert evidence.id_photos(call) == photos

    # the event log keeps what happened, not the picture's bytes
    recorded = list(RobotEvent.objects.filter(type="id_photo").order_by("pk"))
    assert len(recorded) == 2
    assert recorded[0].data["photo"] == photos[0].pk
    assert "base64" not in recorded[0].data
    assert recorded[0].data["bytes"] == len(inline)
    assert recorded[1].data["url"].endswith("/up/id-2.jpg")

    # the agent's desk hears of each photo
    kinds = [(m["kind"], m.get("photo")) for m in pushed() if m["kind"] == "photo"]
    assert kinds == [("photo", photos[0].pk), ("photo", photos[1].pk)]

    # the agent sees the photo; another lot's agent does not
    mine, theirs = Client(), Client()
    mine.force_login(a.agent)
    theirs.force_login(b.agent)
    url = evidence.photo_url(photos[0])
    response = mine.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == inline  # type: ignore[attr-defined]
    assert theirs.get(url).status_code == 404


def test_a_photo_without_a_command_goes_to_the_newest_open_call_at_the_robot(
    lots: tuple[FullLot, FullLot],
) -> None:
    a, _b = lots
    older = ring(a)
    newer = ring(a)
    Call.objects.filter(pk=newer.pk).update(started_at=older.started_at + timedelta(seconds=5))
    send(id_photo_event(a.world.robot.code, photo=CAR_JPEG, content_type="image/jpeg"))
    assert [p.call_id for p in CapturedPhoto.objects.all()] == [newer.pk]


def test_bad_photos_are_recorded_as_rejected_and_stored_nowhere(
    lots: tuple[FullLot, FullLot],
    pictures: Pictures,
    django_capture_on_commit_callbacks: Any,
) -> None:
    a, b = lots
    code = a.world.robot.code
    # no call at the robot yet
    send(id_photo_event(code, photo=CAR_JPEG, content_type="image/jpeg"))
    call = ring(a)
    command = evidence.capture_id(call, a.agent, count=1)
    pushed = listening(f"agent.{a.agent.pk}")
    pictures.files["/big.jpg"] = (200, b"\xff\xd8\xff" + b"\0" * evidence.URL_PHOTO_MAX_BYTES)
    pictures.files["/text.jpg"] = (200, b"<html>not a picture</html>")
    bad = [
        id_photo_event(code, photo=b"GIF89a....", content_type="image/jpeg"),  # not JPEG/PNG
        id_photo_event(code, photo=id_card_png(), content_type="image/jpeg"),  # a PNG as JPEG
        id_photo_event(code, url=pictures.url("/missing.jpg")),  # 404
        id_photo_event(code, url=pictures.url("/big.jpg")),  # over the size limit
        id_photo_event(code, url=pictures.url("/text.jpg")),  # no picture there
        id_photo_event(code, url="http://127.0.0.1:9/nothing.jpg"),  # nobody listening
        id_photo_event(code, photo=CAR_JPEG, content_type="image/jpeg", cmd_id="c-unknown"),
        id_photo_event(
            code, photo=CAR_JPEG, content_type="image/jpeg", cmd_id=command.cmd_id, index=2
        ),  # only 1 asked for
        id_photo_event(  # another lot's robot cannot answer this command
            b.world.robot.code, photo=CAR_JPEG, content_type="image/jpeg", cmd_id=command.cmd_id
        ),
        (code, b'{"event_id": "x", "type": "id_photo"'),  # unreadable: dropped
    ]
    with django_capture_on_commit_callbacks(execute=True):
        send(*bad)
    assert not CapturedPhoto.objects.exists()
    rejected = RobotEvent.objects.filter(type="id_photo")
    assert rejected.count() == len(bad)  # the unreadable one is dropped; the first above
    assert all(event.data.get("rejected") for event in rejected)
    assert all("photo" not in event.data for event in rejected)
    reasons = [m["reason"] for m in pushed() if m["kind"] == "photo_rejected"]
    assert len(reasons) == 7  # those with a call at this robot (not the first, not lot B's)
    # nothing was left in storage either
    folder = f"evidence/{a.world.lot.code}/desk"
    assert not default_storage.exists(folder) or default_storage.listdir(folder)[1] == []

    # the photo asked for still arrives afterwards, and a closed call takes no more photos
    good = id_photo_event(
        code, photo=CAR_JPEG, content_type="image/jpeg", cmd_id=command.cmd_id, index=1
    )
    send(good)
    assert CapturedPhoto.objects.filter(call=call).count() == 1
    Call.objects.filter(pk=call.pk).update(closed_at=timezone.now())
    send(id_photo_event(code, photo=CAR_JPEG, content_type="image/jpeg"))
    assert CapturedPhoto.objects.count() == 1


def test_capture_id_is_authorised_like_every_desk_action(lots: tuple[FullLot, FullLot]) -> None:
    a, b = lots
    call = ring(a)
    with pytest.raises(Forbidden):
        evidence.capture_id(call, b.agent)
    with pytest.raises(Refused):
        evidence.capture_id(call, a.agent, count=5)
    Call.objects.filter(pk=call.pk).update(closed_at=timezone.now())
    with pytest.raises(Refused):
        evidence.capture_id(call, a.agent)
    assert not Command.objects.filter(cmd="capture_id").exists()
    assert not AgentAction.objects.filter(action=DeskAction.CAPTURE_ID).exists()


# --- Ezviz ---------------------------------------------------------------------------------------


@pytest.fixture
def platform(settings: Any) -> Iterator[EzvizStandIn]:
    with EzvizStandIn(serials=["ez-caike", "ez-futian", "ez-other"]) as standin:
        settings.EPPARK_EZVIZ_URL = standin.base_url
        settings.EPPARK_EZVIZ_APP_KEY = standin.app_key
        settings.EPPARK_EZVIZ_APP_SECRET = standin.app_secret
        ezviz.forget_tokens()
        yield standin
    ezviz.forget_tokens()


def test_the_ezviz_client_caches_its_token_and_renews_it_on_10002(
    platform: EzvizStandIn,
) -> None:
    client = ezviz.EzvizClient()
    first = client.capture("ez-caike")
    assert client.download(first) == CAR_JPEG
    client.capture("ez-futian")
    assert platform.token_requests == 1  # cached
    assert ezviz.EzvizClient().capture("ez-caike")  # shared by every client of the process
    assert platform.token_requests == 1
    platform.expire_tokens()
    assert client.capture("ez-caike")  # 10002 → a new token → the capture again
    assert platform.token_requests == 2
    assert platform.captures == ["ez-caike", "ez-futian", "ez-caike", "ez-caike"]
    devices = client.devices()
    assert [d.serial for d in devices] == ["ez-caike", "ez-futian", "ez-other"]
    assert all(d.online for d in devices)


@pytest.mark.parametrize(
    ("setup", "code", "words"),
    [
        (lambda s: s.offline.add("ez-caike"), "20007", "设备不在线"),
        (lambda s: setattr(s, "fail_with", "10028"), "10028", "今日抓拍次数已达上限"),
        (lambda s: setattr(s, "fail_with", "49999"), "49999", "萤石平台系统错误"),
        (lambda s: setattr(s, "serials", {"ez-other"}), "20002", "设备未注册"),
        (lambda s: setattr(s, "fail_with", "20018"), "20018", "该设备不属于本账号"),
        (lambda s: setattr(s, "app_secret", "changed"), "10030", "appKey 与 appSecret 不匹配"),
    ],
)
def test_ezviz_errors_come_back_in_words(
    platform: EzvizStandIn, setup: Any, code: str, words: str
) -> None:
    setup(platform)
    with pytest.raises(ezviz.EzvizError) as caught:
        ezviz.EzvizClient().capture("ez-caike")
    assert caught.value.code == code
    assert words in caught.value.message


def test_ezviz_unreachable_or_unconfigured(settings: Any) -> None:
    ezviz.forget_tokens()
    settings.EPPARK_EZVIZ_URL = "http://127.0.0.1:9"
    settings.EPPARK_EZVIZ_APP_KEY, settings.EPPARK_EZVIZ_APP_SECRET = "k", "s"
    with pytest.raises(ezviz.EzvizError) as caught:
        ezviz.EzvizClient(timeout=1).capture("ez-caike")
    assert "无法连接萤石平台" in caught.value.message
    settings.EPPARK_EZVIZ_APP_KEY = ""
    with pytest.raises(ezviz.EzvizError) as caught:
        ezviz.EzvizClient().capture("ez-caike")
    assert "萤石平台未配置" in caught.value.message
    assert ezviz.describe("20007") == "设备不在线"
    with translation.override("en"):
        assert ezviz.describe("20007") == "the device is offline"


def test_capture_scene_stores_the_environment_cameras_snapshot(
    lots: tuple[FullLot, FullLot],
    platform: EzvizStandIn,
    django_capture_on_commit_callbacks: Any,
) -> None:
    a, b = lots
    call = ring(a)
    pushed = listening(f"agent.{a.agent.pk}")
    with django_capture_on_commit_callbacks(execute=True):
        photo = evidence.capture_scene(call, a.agent)
    assert platform.captures == ["ez-caike"]  # the camera linked to the call's robot
    assert photo.kind == EvidenceKind.SCENE
    assert photo.call_id == call.pk
    with default_storage.open(str(photo.file.name), "rb") as handle:
        assert handle.read() == CAR_JPEG
    audit = AgentAction.objects.get(action=DeskAction.CAPTURE_SCENE)
    assert audit.detail == {
        "photo": photo.pk,
        "camera": Camera.objects.get(ezviz_serial="ez-caike").pk,
        "serial": "ez-caike",
    }
    assert [m for m in pushed() if m["kind"] == "photo"] == [
        {"type": "desk.message", "kind": "photo", "call": call.pk, "photo": photo.pk}
    ]
    assert evidence.latest_scene(a.world.exit) == photo
    assert evidence.latest_scene(call) == photo  # by the call's gate
    assert evidence.latest_scene(a.world.exit, timezone.now() + timedelta(minutes=6)) is None
    assert evidence.latest_scene(b.world.exit) is None
    assert evidence.scene_photos(call) == [photo]

    # another lot's agent may not
    with pytest.raises(Forbidden):
        evidence.capture_scene(call, b.agent)


def test_capture_scene_refuses_in_words(
    lots: tuple[FullLot, FullLot], platform: EzvizStandIn
) -> None:
    a, _b = lots
    call = ring(a)
    platform.offline.add("ez-caike")
    with pytest.raises(Refused) as caught:
        evidence.capture_scene(call, a.agent)
    assert "设备不在线" in caught.value.message
    assert not Camera.objects.get(ezviz_serial="ez-caike").online
    Camera.objects.filter(vendor="ezviz").delete()
    with pytest.raises(Refused) as caught:
        evidence.capture_scene(call, a.agent)
    assert caught.value.message == "该道口没有环境摄像头。"
    assert not CapturedPhoto.objects.exists()
    assert not AgentAction.objects.filter(action=DeskAction.CAPTURE_SCENE).exists()


def test_an_exit_abnormal_open_cites_the_photos_and_the_log_shows_them(
    lots: tuple[FullLot, FullLot], platform: EzvizStandIn
) -> None:
    a, _b = lots
    call = ring(a)
    command = evidence.capture_id(call, a.agent, count=1)
    send(
        id_photo_event(
            a.world.robot.code,
            photo=id_card_png(),
            content_type="image/png",
            cmd_id=command.cmd_id,
            index=1,
        )
    )
    scene = evidence.capture_scene(call, a.agent)
    [id_photo] = evidence.id_photos(call)
    record = cases.abnormal_open(
        call, a.agent, "special_vehicle", "警车粤B12345，张警官出场", [id_photo.pk], [scene.pk]
    )
    kept = {e.kind: e.file.name for e in record.evidence.all()}
    assert kept == {"id": id_photo.file.name, "scene": scene.file.name}
    page = Client()
    page.force_login(a.agent)
    html = page.get("/console/opens/").content.decode()
    assert f'data-open-id="{record.pk}"' in html
    for item in record.evidence.all():
        url = f"/evidence/abnormal-open/{item.pk}/file/"
        assert f'src="{url}"' in html
        assert page.get(url).status_code == 200


def test_the_demo_uses_the_stand_in_unless_an_account_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    ezviz.forget_tokens()
    with demo_platform() as standin:
        assert standin is not None
        client = ezviz.EzvizClient()
        assert client.cfg.url == standin.base_url
        assert client.download(client.capture("D12345678")) == CAR_JPEG  # any serial
    assert "EPPARK_EZVIZ_URL" not in os.environ
    monkeypatch.setenv("EPPARK_EZVIZ_APP_KEY", "a-real-key")
    with demo_platform() as standin:
        assert standin is None
    ezviz.forget_tokens()
