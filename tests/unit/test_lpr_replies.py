"""Replies match the vendors' formats byte for byte (open vs shut)."""

from __future__ import annotations

import pytest

from eppark.devices.lpr import Reply, adapter, dahua, hikvision, hxzx, vzenith
from tests.unit.test_lpr_fixtures import parse, read

JSON = "application/json; charset=utf-8"


def body(reply: Reply) -> str:
    assert (reply.status, reply.content_type) == (200, JSON)
    return reply.body.decode("utf-8")


def test_vzenith_open_and_shut() -> None:
    assert body(vzenith.plate_reply(open=True)) == (
        '{"Response_AlarmInfoPlate":{"info":"ok","content":"retransfer_stop"}}'
    )
    assert body(vzenith.plate_reply(open=False)) == (
        '{"Response_AlarmInfoPlate":{"info":"no","content":"retransfer_stop"}}'
    )


def test_vzenith_full_reply_as_in_the_vendor_document() -> None:
    data = bytes(range(28))
    reply = vzenith.plate_reply(
        open=True, is_pay=True, serial_data=[vzenith.SerialData(data=data, channel=0)]
    )
    assert body(reply) == (
        '{"Response_AlarmInfoPlate":{"info":"ok","content":"retransfer_stop","is_pay":"true",'
        '"serialData":[{"serialChannel":0,"data":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==",'
        '"dataLen":28}]}}'
    )


def test_vzenith_reply_to_an_online_read_echoes_plateid() -> None:
    event = read("vzenith", "plate.json")
    assert body(vzenith.reply(event, open=True)) == (
        '{"Response_AlarmInfoPlate":{"info":"ok","content":"retransfer_stop","plateid":21085}}'
    )
    assert body(vzenith.reply(event, open=False)) == (
        '{"Response_AlarmInfoPlate":{"info":"no","content":"retransfer_stop","plateid":21085}}'
    )


def test_vzenith_backlog_is_acknowledged_and_never_opens() -> None:
    event = read("vzenith", "offline.json")
    assert body(vzenith.reply(event)) == (
        '{"Response_AlarmInfoPlate":{"ContinuePushOffline":{"plateid":123,"continue":1}}}'
    )
    assert body(vzenith.offline_reply(123, continue_push=False)) == (
        '{"Response_AlarmInfoPlate":{"ContinuePushOffline":{"plateid":123,"continue":0}}}'
    )
    with pytest.raises(ValueError, match="backlog"):
        vzenith.reply(event, open=True)


def test_vzenith_heartbeat_carries_a_queued_open() -> None:
    event = parse("vzenith", "heartbeat.multipart")
    assert body(vzenith.reply(event)) == '{"Response_AlarmInfoPlate":{}}'
    assert body(vzenith.reply(event, open=True)) == '{"Response_AlarmInfoPlate":{"info":"ok"}}'
    assert body(vzenith.heartbeat_reply(ioctrl=vzenith.IoCtrl(io=0, value=2, delay=500))) == (
        '{"Response_AlarmInfoPlate":{"ivs_ioctrl":{"delay":500,"io":0,"value":2}}}'
    )


def test_hxzx_open_shut_and_heartbeat() -> None:
    event = read("hxzx", "online.form")
    assert body(hxzx.reply(event, open=True)) == (
        '{"error_num":0,"error_str":"noerror","gpio_data":[{"ionum":"io1","action":"on"}]}'
    )
    assert body(hxzx.reply(event, open=False)) == '{"error_num":0,"error_str":"noerror"}'
    assert body(hxzx.reply(parse("hxzx", "heartbeat.form"))) == (
        '{"error_num":0,"error_str":"noerror"}'
    )
    with pytest.raises(ValueError, match="backlog"):
        hxzx.reply(read("hxzx", "offline.form"), open=True)


def test_hikvision_acknowledges_with_an_empty_200() -> None:
    reply = hikvision.reply(read("hikvision", "anpr.multipart"))
    assert (reply.status, reply.body) == (200, b"")
    with pytest.raises(ValueError, match="camera API"):
        hikvision.reply(read("hikvision", "anpr.multipart"), open=True)


def test_dahua_result_true() -> None:
    assert body(dahua.reply(read("dahua", "tollgate.json"))) == '{"Result":true}'
    assert body(dahua.reply(parse("dahua", "keepalive.json"))) == '{"Result":true}'
    with pytest.raises(ValueError, match="camera API"):
        dahua.reply(read("dahua", "tollgate.json"), open=True)


def test_who_opens_by_reply() -> None:
    assert {v: adapter(v).opens_by_reply for v in ("vzenith", "hxzx", "hikvision", "dahua")} == {
        "vzenith": True,
        "hxzx": True,
        "hikvision": False,
        "dahua": False,
    }
    with pytest.raises(KeyError, match="unknown LPR vendor"):
        adapter("axis")
