"""EP君's MQTT messages: round trips, and every bad field named (docs/robot-protocol.md)."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from eppark.domain.errors import BadInput
from eppark.gateway.broker import mosquitto_acl
from eppark.gateway.protocol import (
    Ack,
    CaptureId,
    Command,
    Display,
    Event,
    IdPhoto,
    Loop,
    Open,
    Present,
    ResendAcks,
    Screen,
    Vehicle,
    is_expired,
    may_publish,
    may_subscribe,
    parse_mqtt_url,
    parse_topic,
    peek_cmd_id,
    topic,
)

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=CST)
PRESENT = {
    "cmd_id": "c-1",
    "cmd": "present",
    "ts": "2026-11-27T08:00:00.000+08:00",
    "ttl_ms": 30000,
    "args": {
        "voice": "请扫码缴费后出场",
        "display": {"kind": "qr", "qr": "https://pay.example/q/1", "text": "扫码缴费"},
        "light": "green",
    },
}
ACK = {"cmd_id": "c-1", "status": "done", "ts": "2026-11-27T08:00:01.000+08:00"}
EVENT = {
    "event_id": "EP-0001-e1",
    "ts": "2026-11-27T08:00:00.000+08:00",
    "type": "loop",
    "data": {"present": True},
}


def with_change(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``base`` with the dotted ``path`` set (or removed when value is ...)."""
    out = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


def test_topics_are_built_and_parsed() -> None:
    assert topic("EP-0001", "acks") == "ep/robots/EP-0001/acks"
    assert parse_topic("ep/robots/EP-0001/events") == ("EP-0001", "events")


@pytest.mark.parametrize(
    "name", ["ep/robots/EP-0001", "ep/robots/+/acks", "ep/robots/EP-0001/other", "x/robots/A/acks"]
)
def test_bad_topics_are_refused(name: str) -> None:
    with pytest.raises(BadInput, match=r"^topic"):
        parse_topic(name)


@pytest.mark.parametrize(("code", "kind"), [("gateway", "acks"), ("a/b", "acks"), ("A", "x")])
def test_bad_codes_and_kinds_are_refused(code: str, kind: str) -> None:
    with pytest.raises(BadInput):
        topic(code, kind)


def test_the_acl() -> None:
    assert may_publish("EP-0001", "ep/robots/EP-0001/status")
    assert may_publish("EP-0001", "ep/robots/EP-0001/acks")
    assert not may_publish("EP-0001", "ep/robots/EP-0001/commands")
    assert not may_publish("EP-0001", "ep/robots/EP-0002/events")
    assert may_subscribe("EP-0001", "ep/robots/EP-0001/commands")
    assert not may_subscribe("EP-0001", "ep/robots/+/commands")
    assert not may_subscribe("EP-0001", "#")
    assert may_subscribe("gateway", "ep/#")
    assert not may_subscribe("gateway", "#")
    assert not may_publish(None, "ep/robots/EP-0001/status")


def test_the_mosquitto_acl_says_the_same() -> None:
    acl = mosquitto_acl()
    assert "user gateway\ntopic readwrite ep/#" in acl
    for line in ("pattern write ep/robots/%u/status", "pattern read ep/robots/%u/commands"):
        assert line in acl


def test_a_command_round_trips() -> None:
    command = Command.from_json(json.dumps(PRESENT))
    assert command.cmd == "present"
    assert isinstance(command.args, Present)
    assert command.args.display == Display("qr", qr="https://pay.example/q/1", text="扫码缴费")
    assert json.loads(command.to_json()) == PRESENT


@pytest.mark.parametrize(
    "args",
    [
        Open(),
        Open(reason="agent 1001: abnormal open"),
        CaptureId(count=4),
        ResendAcks(("c-1", "EP-0001:9b1c")),
        Present(Display("face", face="smile"), "green", voice="欢迎光临"),
        Present(Display("text", text="请出示您的有效证件"), "green"),
        Present(Display("vehicles", vehicles=(Vehicle("粤B12345", None, T0),)), "yellow"),
    ],
)
def test_every_command_round_trips(args: Open | CaptureId | ResendAcks | Present) -> None:
    command = Command("c-2", T0, 5000, args)
    assert Command.from_json(command.to_json()) == command


def test_expiry_is_ts_plus_ttl_on_the_robots_clock() -> None:
    command = Command("c-3", T0, 10_000, Open())
    assert not is_expired(command, T0 + timedelta(seconds=10))
    assert is_expired(command, T0 + timedelta(seconds=10, milliseconds=1))


BAD_COMMANDS = [
    ("cmd_id", ..., "cmd_id"),
    ("cmd_id", "", "cmd_id"),
    ("cmd_id", "has space", "cmd_id"),
    ("cmd", "explode", "cmd"),
    ("ts", "2026-11-27T08:00:00", "ts"),
    ("ts", 0, "ts"),
    ("ttl_ms", 0, "ttl_ms"),
    ("ttl_ms", 1.5, "ttl_ms"),
    ("ttl_ms", 3_600_001, "ttl_ms"),
    ("args", [], "args"),
    ("extra", 1, "extra"),
    ("args.light", "blue", "args.light"),
    ("args.light", ..., "args.light"),
    ("args.voice", "   ", "args.voice"),
    ("args.voice", "x" * 501, "args.voice"),
    ("args.display", ..., "args.display"),
    ("args.display.kind", "video", "args.display.kind"),
    ("args.display.qr", "", "args.display.qr"),
    ("args.display.qr", ..., "args.display.qr"),
    ("args.display.face", "wink", "args.display.face"),
    ("args.display.bogus", 1, "args.display.bogus"),
    ("args.bogus", 1, "args.bogus"),
]


@pytest.mark.parametrize(("path", "value", "field"), BAD_COMMANDS)
def test_every_bad_command_field_is_named(path: str, value: Any, field: str) -> None:
    with pytest.raises(BadInput) as caught:
        Command.from_json(json.dumps(with_change(PRESENT, path, value)))
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("cmd", "args", "field"),
    [
        ("capture_id", {"count": 0}, "args.count"),
        ("capture_id", {"count": 5}, "args.count"),
        ("capture_id", {"count": "2"}, "args.count"),
        ("open", {"reason": 1}, "args.reason"),
        ("resend_acks", {}, "args.cmd_ids"),
        ("resend_acks", {"cmd_ids": []}, "args.cmd_ids"),
        ("resend_acks", {"cmd_ids": "c-1"}, "args.cmd_ids"),
        ("resend_acks", {"cmd_ids": [f"c-{n}" for n in range(51)]}, "args.cmd_ids"),
        ("resend_acks", {"cmd_ids": ["c-1", "has space"]}, "args.cmd_ids[1]"),
        ("resend_acks", {"cmd_ids": ["c-1"], "count": 1}, "args.count"),
    ],
)
def test_bad_args_of_other_commands_are_named(cmd: str, args: dict[str, Any], field: str) -> None:
    payload = {**PRESENT, "cmd": cmd, "args": args}
    with pytest.raises(BadInput) as caught:
        Command.from_json(json.dumps(payload))
    assert caught.value.field == field


def test_vehicles_are_checked_one_by_one() -> None:
    display = {"kind": "vehicles", "vehicles": [{"plate": "粤B12345"}, {"plate": ""}]}
    with pytest.raises(BadInput) as caught:
        Command.from_json(json.dumps(with_change(PRESENT, "args.display", display)))
    assert caught.value.field == "args.display.vehicles[1].plate"


@pytest.mark.parametrize("payload", [b"\xff", b"not json", b"[]", b"null"])
def test_unreadable_payloads_are_refused(payload: bytes) -> None:
    with pytest.raises(BadInput):
        Command.from_json(payload)


def test_peek_finds_the_cmd_id_of_a_bad_command() -> None:
    assert peek_cmd_id(json.dumps(with_change(PRESENT, "args.light", "blue"))) == "c-1"
    assert peek_cmd_id(b"not json") is None
    assert peek_cmd_id(b'{"cmd_id": 5}') is None


def test_an_ack_with_a_screen_round_trips() -> None:
    screen = Screen("欢迎光临", Display("face", face="smile"), "green", T0, "c-1")
    ack = Ack("c-1", "done", T0, screen=screen)
    assert Ack.from_json(ack.to_json()) == ack


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("status", "ok", "status"),
        ("cmd_id", ..., "cmd_id"),
        ("ts", "yesterday", "ts"),
        ("detail", "", "detail"),
        ("screen", {"voice": None}, "screen.display"),
        ("screen", [], "screen"),
        ("extra", True, "extra"),
    ],
)
def test_every_bad_ack_field_is_named(path: str, value: Any, field: str) -> None:
    with pytest.raises(BadInput) as caught:
        Ack.from_json(json.dumps(with_change(ACK, path, value)))
    assert caught.value.field == field


def test_events_round_trip() -> None:
    event = Event.from_json(json.dumps(EVENT))
    assert event.data == Loop(True)
    photo = Event("e-2", T0, IdPhoto(b"\xff\xd8jpeg", "image/jpeg", cmd_id="c-9", index=1))
    assert Event.from_json(photo.to_json()) == photo


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("event_id", "", "event_id"),
        ("type", "alarm", "type"),
        ("data.present", "yes", "data.present"),
        ("data", {}, "data.present"),
        ("ts", "2026-13-01T00:00:00+08:00", "ts"),
    ],
)
def test_every_bad_event_field_is_named(path: str, value: Any, field: str) -> None:
    with pytest.raises(BadInput) as caught:
        Event.from_json(json.dumps(with_change(EVENT, path, value)))
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"content_type": "image/jpeg"}, "data.base64"),
        ({"base64": "!!!", "content_type": "image/jpeg"}, "data.base64"),
        ({"base64": "AAAA"}, "data.content_type"),
        ({"base64": "AAAA", "content_type": "image/gif"}, "data.content_type"),
        ({"base64": "A" * 400_000, "content_type": "image/jpeg"}, "data.base64"),
        ({"url": "ftp://x/y.jpg"}, "data.url"),
        ({"url": "https://x/y.jpg", "index": 0}, "data.index"),
    ],
)
def test_every_bad_id_photo_field_is_named(data: dict[str, Any], field: str) -> None:
    payload = {**EVENT, "type": "id_photo", "data": data}
    with pytest.raises(BadInput) as caught:
        Event.from_json(json.dumps(payload))
    assert caught.value.field == field


def test_sending_a_bad_message_is_refused() -> None:
    with pytest.raises(BadInput, match="light"):
        Command("c-1", T0, 1000, Present(Display("face", face="smile"), "blue")).to_json()


def test_mqtt_urls() -> None:
    assert parse_mqtt_url("mqtt://127.0.0.1:11883").port == 11883
    assert parse_mqtt_url("mqtts://gateway:p%40ss@mq.example").password == "p@ss"
    with pytest.raises(BadInput, match="MQTT_URL"):
        parse_mqtt_url("http://x")
