"""Pushes shaped as the vendors' own documents and public integrations show them.

Each fixture here was refused by the adapters before (see tests/fixtures/lpr/SOURCES.md
for where each shape comes from): older Vzenith firmware and the Qianyi family without
``plateid``, JSON heartbeats, GB2312/GBK bodies, raw UTF-8 forms, Hikvision alerts
without ``deviceID``/``macAddress``, and Dahua's DeviceInfo registration.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from eppark.devices.lpr import Heartbeat, HttpPush, PlateRead, adapter, dahua, vzenith
from tests.unit.test_lpr_fixtures import is_jpeg, load, parse, read

JSON = "application/json; charset=utf-8"


def body(reply_body: bytes) -> object:
    return json.loads(reply_body.decode("utf-8"))


# --- Vzenith: older firmware and the Qianyi/Alphadigi family --------------------------


def test_vzenith_legacy_read_without_plateid_is_read_online_with_a_derived_id() -> None:
    event = read("vzenith", "legacy_plate.json")
    assert event == PlateRead(
        vendor="vzenith",
        serial="eff50e18-e3d3862b",
        plate="粤B12345",
        raw_plate="粤B12345",
        color="yellow",
        confidence=91,
        read_at=datetime(2024, 2, 20, 6, 30, 45, 123000, tzinfo=UTC),
        read_id=event.read_id,
        offline=False,
        direction="down",
        images=(),
    )
    # derived from the content: the same read re-sent has the same id, another read another
    assert event.read_id == read("vzenith", "legacy_plate.json").read_id
    assert "eff50e18-e3d3862b" in event.read_id
    assert "picture/0/20240220_143045_123.jpg" in event.read_id
    doc = json.loads(load("vzenith", "legacy_plate.json").body)
    doc["AlarmInfoPlate"]["result"]["PlateResult"]["timeStamp"]["Timeval"]["sec"] += 60
    later = adapter("vzenith").parse(HttpPush(JSON, json.dumps(doc, ensure_ascii=False).encode()))
    assert isinstance(later, PlateRead)
    assert later.read_id != event.read_id


def test_vzenith_legacy_read_is_answered_without_a_plateid() -> None:
    event = read("vzenith", "legacy_plate.json")
    reply = vzenith.reply(event, open=True)
    assert (reply.status, reply.content_type) == (200, JSON)
    assert body(reply.body) == {
        "Response_AlarmInfoPlate": {"info": "ok", "content": "retransfer_stop"}
    }
    assert body(vzenith.reply(event, open=False).body) == {
        "Response_AlarmInfoPlate": {"info": "no", "content": "retransfer_stop"}
    }


def test_qianyi_parkingcam_read() -> None:
    event = read("vzenith", "qianyi_plate.json")
    assert (event.serial, event.plate, event.color) == ("3a5c9e71-0b2d44f8", "粤BD12345", "green")
    assert event.offline is False
    assert event.confidence == 88
    assert event.read_at == datetime(2024, 2, 20, 6, 31, 45, 456000, tzinfo=UTC)
    assert [image.name for image in event.images] == ["full.jpg"]  # the empty fragment skipped
    assert is_jpeg(event.images[0].data)
    assert not event.read_id.isdigit()  # derived: never mistaken for a camera plateid


def test_json_heartbeats_are_heartbeats_answered_with_response_heartbeat() -> None:
    lower = parse("vzenith", "heartbeat_json.json")
    upper = parse("vzenith", "heartbeat_json_capital.json")
    assert lower == Heartbeat(vendor="vzenith", serial="3a5c9e71-0b2d44f8", variant="json")
    assert upper == Heartbeat(
        vendor="vzenith", serial="eff50e18-e3d3862b", ipaddr="192.168.1.100", variant="json"
    )
    for event in (lower, upper):
        assert body(vzenith.reply(event).body) == {
            "Response_Heartbeat": {"info": "no", "serialData": []}
        }
        # a pending open rides on the heartbeat's reply
        assert body(vzenith.reply(event, open=True).body) == {
            "Response_Heartbeat": {"info": "ok", "serialData": []}
        }


def test_a_json_heartbeat_without_serialno_still_counts() -> None:
    event = adapter("vzenith").parse(HttpPush(JSON, b'{"heartbeat": {"countid": 1}}'))
    assert event == Heartbeat(vendor="vzenith", serial="", variant="json")


# --- GB2312 / GBK bodies, raw UTF-8 forms ---------------------------------------------


def test_vzenith_gb2312_body_declared_in_the_content_type() -> None:
    push = load("vzenith", "plate_gb2312.json")
    assert "charset=GB2312" in push.content_type
    event = adapter("vzenith").parse(push)
    assert isinstance(event, PlateRead)
    assert (event.plate, event.raw_plate) == ("京A0C8F9", "京A0C8F9")


def test_vzenith_gbk_body_without_charset_is_detected() -> None:
    push = load("vzenith", "plate_gbk_undeclared.json")
    assert "charset" not in push.content_type
    push.body.decode("gbk")  # the fixture really is GBK …
    try:
        push.body.decode("utf-8")
        raise AssertionError("… and not UTF-8")
    except UnicodeDecodeError:
        pass
    assert read("vzenith", "plate_gbk_undeclared.json").plate == "沪C88888"


def test_hxzx_raw_utf8_form() -> None:
    event = read("hxzx", "online_raw_utf8.form")
    assert (event.serial, event.plate, event.color) == ("HX-0A2B3C", "粤B54321", "yellow")
    assert event.direction == "out"
    assert event.read_at == datetime(2024, 2, 20, 6, 30, 45, tzinfo=UTC)


def test_hxzx_gbk_percent_encoded_form() -> None:
    event = read("hxzx", "online_gbk.form")
    assert (event.plate, event.color, event.direction) == ("浙A12345", "blue", "in")


def test_hxzx_raw_gbk_form_without_charset() -> None:
    body_ = "type=online&cam_id=HX-1&plate_num=苏E12345&plate_color=蓝色".encode("gbk")
    event = adapter("hxzx").parse(HttpPush("application/x-www-form-urlencoded", body_))
    assert isinstance(event, PlateRead)
    assert (event.plate, event.color) == ("苏E12345", "blue")


# --- Hikvision: older firmware ----------------------------------------------------------


def test_hikvision_std_cgi_alert_without_device_id_or_mac() -> None:
    event = read("hikvision", "anpr_std_cgi.multipart")
    assert event.serial == ""  # nothing names the device: the URL key does
    assert (event.plate, event.color, event.direction) == ("粤B12345", "blue", "reverse")
    assert event.confidence == 87
    assert event.read_at == datetime(2024, 2, 20, 6, 30, 45, tzinfo=UTC)
    assert event.read_id == read("hikvision", "anpr_std_cgi.multipart").read_id
    # pictures sent as application/octet-stream are kept, as JPEGs
    assert [(i.name, i.content_type) for i in event.images] == [
        ("licensePlatePicture.jpg", "image/jpeg"),
        ("detectionPicture.jpg", "image/jpeg"),
    ]
    assert all(is_jpeg(i.data) for i in event.images)


def test_hikvision_device_id_is_a_device_number_not_the_serial() -> None:
    event = read("hikvision", "anpr_device_number.xml")
    assert event.serial == "bc:ba:c2:5a:31:7e"  # the MAC, not deviceID 88
    assert event.plate == "粤B12345"


def test_hikvision_version_1_alert_names_its_serial_in_extensions() -> None:
    xml = (
        '<EventNotificationAlert version="1.0" xmlns="http://www.std-cgi.com/ver20/XMLSchema">'
        "<dateTime>2024-02-20T14:30:45+08:00</dateTime><eventType>ANPR</eventType>"
        "<ANPR><licensePlate>粤B12345</licensePlate></ANPR>"
        "<Extensions><serialNumber>DS-TCG227-A20240101AACH123456789</serialNumber></Extensions>"
        "</EventNotificationAlert>"
    ).encode()
    event = adapter("hikvision").parse(HttpPush("application/xml", xml))
    assert isinstance(event, PlateRead)
    assert event.serial == "DS-TCG227-A20240101AACH123456789"


def test_hikvision_gb2312_declared_xml() -> None:
    xml = (
        '<?xml version="1.0" encoding="GB2312"?>'
        '<EventNotificationAlert version="1.0" xmlns="http://www.std-cgi.com/ver20/XMLSchema">'
        "<eventType>ANPR</eventType><ANPR><licensePlate>粤B12345</licensePlate></ANPR>"
        "</EventNotificationAlert>"
    ).encode("gb2312")
    event = adapter("hikvision").parse(HttpPush("application/xml", xml))
    assert isinstance(event, PlateRead)
    assert event.plate == "粤B12345"


def test_hikvision_gbk_xml_without_declaration() -> None:
    xml = (
        '<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">'
        "<eventType>ANPR</eventType><ANPR><licensePlate>苏E12345</licensePlate></ANPR>"
        "</EventNotificationAlert>"
    ).encode("gbk")
    for content_type in ("application/xml; charset=GBK", "application/xml"):
        event = adapter("hikvision").parse(HttpPush(content_type, xml))
        assert isinstance(event, PlateRead)
        assert event.plate == "苏E12345"


# --- Dahua: DeviceInfo registration ---------------------------------------------------


def test_dahua_device_info_registration() -> None:
    event = parse("dahua", "device_info.json")
    assert event == Heartbeat(
        vendor="dahua",
        serial="6J0B4A1PAZ4F7C3",
        ipaddr="192.168.1.108",
        device_name="ITC-EXIT-1",
        variant="registration",
        model="ITC237-PW6M-IRLZF",
    )
    reply = dahua.reply(event)
    assert (reply.status, reply.body) == (200, b'{"Result":true}')


def test_dahua_device_info_wrapped_and_bare() -> None:
    push = HttpPush(
        JSON,
        b'{"DeviceInfo": {"DeviceID": "SN-1", "DeviceName": "gate"}}',
        path=dahua.DEVICE_INFO_PATH,
    )
    event = adapter("dahua").parse(push)
    assert isinstance(event, Heartbeat)
    assert (event.serial, event.device_name, event.variant) == ("SN-1", "gate", "registration")
