"""Every recorded-style LPR fixture parses to the expected event."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from eppark.devices.lpr import ADAPTERS, Heartbeat, HttpPush, PlateRead, adapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lpr"
SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_TYPES = {
    ".json": "application/json",
    ".form": "application/x-www-form-urlencoded",
    ".xml": "application/xml",
}


def load(vendor: str, name: str) -> HttpPush:
    """The fixture as the Django view would hand it over (content type from the sidecar)."""
    path = FIXTURES / vendor / name
    meta_path = path.with_name(path.name + ".meta.json")
    meta = json.loads(meta_path.read_text("utf-8")) if meta_path.exists() else {}
    content_type = meta.get("content_type") or DEFAULT_TYPES[path.suffix]
    return HttpPush(content_type, path.read_bytes(), path=meta.get("path", ""))


def parse(vendor: str, name: str) -> PlateRead | Heartbeat:
    return adapter(vendor).parse(load(vendor, name))


def read(vendor: str, name: str) -> PlateRead:
    event = parse(vendor, name)
    assert isinstance(event, PlateRead)
    return event


def is_jpeg(data: bytes) -> bool:
    return data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"


def test_every_fixture_is_covered() -> None:
    tested = {
        ("vzenith", n) for n in ("plate.json", "no_plate.json", "offline.json", "cross_border.json")
    } | {("vzenith", "heartbeat.multipart")}
    tested |= {
        ("hxzx", n) for n in ("online.form", "offline.form", "no_plate.form", "heartbeat.form")
    }
    tested |= {
        ("hikvision", n) for n in ("anpr.multipart", "anpr_no_plate.multipart", "heartbeat.xml")
    }
    tested |= {("dahua", n) for n in ("tollgate.json", "tollgate_no_plate.json", "keepalive.json")}
    # tests/unit/test_lpr_real_cameras.py: the vendors' own shapes (SOURCES.md)
    tested |= {
        ("vzenith", n)
        for n in (
            "legacy_plate.json",
            "qianyi_plate.json",
            "heartbeat_json.json",
            "heartbeat_json_capital.json",
            "plate_gb2312.json",
            "plate_gbk_undeclared.json",
        )
    }
    tested |= {("hxzx", "online_raw_utf8.form"), ("hxzx", "online_gbk.form")}
    tested |= {("hikvision", "anpr_std_cgi.multipart"), ("hikvision", "anpr_device_number.xml")}
    tested |= {("dahua", "device_info.json"), ("lpr", "SOURCES.md")}
    on_disk = {
        (p.parent.name, p.name)
        for p in FIXTURES.rglob("*")
        if p.is_file() and not p.name.endswith(".meta.json")
    }
    assert on_disk == tested
    assert set(ADAPTERS) == {"vzenith", "hxzx", "hikvision", "dahua"}


def test_vzenith_plate() -> None:
    event = read("vzenith", "plate.json")
    assert event == PlateRead(
        vendor="vzenith",
        serial="eff50e18-e3d3862b",
        plate="粤B12345",
        raw_plate="粤B12345",
        color="blue",
        confidence=96,
        read_at=datetime(2023, 6, 9, 8, 39, 54, 687772, tzinfo=UTC),
        read_id="21085",
        offline=False,
        direction="down",
        images=event.images,
    )
    doc = json.loads(load("vzenith", "plate.json").body)["AlarmInfoPlate"]["result"]["PlateResult"]
    assert [(i.name, i.content_type) for i in event.images] == [
        ("full.jpg", "image/jpeg"),
        ("plate.jpg", "image/jpeg"),
    ]
    assert event.images[0].data == base64.b64decode(doc["imageFile"])
    assert event.images[1].data == base64.b64decode(doc["imageFragmentFile"])
    assert len(event.images[0].data) == doc["imageFileLen"]
    assert all(is_jpeg(i.data) for i in event.images)
    assert event.read_at is not None
    assert event.read_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") == "2023-06-09 16:39:54"


def test_vzenith_no_plate() -> None:
    event = read("vzenith", "no_plate.json")
    assert event.plate is None
    assert event.raw_plate == "_无_"
    assert event.color is None
    assert event.direction is None
    assert event.read_id == "21086"
    assert event.images == ()
    assert event.read_at == datetime(2023, 6, 9, 8, 40, 12, 5, tzinfo=UTC)


def test_vzenith_offline_backlog() -> None:
    event = read("vzenith", "offline.json")
    assert event.offline is True
    assert (event.plate, event.read_id) == ("京A88888", "123")
    assert event.read_at == datetime(2023, 6, 8, 4, 53, 20, tzinfo=UTC)


def test_vzenith_cross_border_reads_the_mainland_plate() -> None:
    event = read("vzenith", "cross_border.json")
    assert event.plate == "粤ZJ068澳"
    assert event.raw_plate == "粤ZJ068澳|MX7742|ZM127"
    assert event.color == "black"


def test_vzenith_heartbeat_keeps_no_password() -> None:
    event = parse("vzenith", "heartbeat.multipart")
    assert event == Heartbeat(
        vendor="vzenith", serial="eff50e18-e3d3862b", ipaddr="192.168.1.100", device_name="IVS"
    )
    assert "admin" not in repr(event)


def test_hxzx_online() -> None:
    event = read("hxzx", "online.form")
    assert (event.serial, event.plate, event.color, event.direction) == (
        "HX0A1B2C3D4E",
        "粤B12345",
        "blue",
        "in",
    )
    assert event.read_at == datetime(2024, 2, 20, 6, 30, 45, tzinfo=UTC)
    assert event.read_id == "HX0A1B2C3D4E|2024-02-20T06:30:45+00:00|粤B12345"
    assert event.offline is False
    assert event.confidence is None
    assert [i.name for i in event.images] == ["full.jpg", "plate.jpg"]
    assert all(is_jpeg(i.data) for i in event.images)
    raw = load("hxzx", "online.form").body.decode()
    assert "-" in raw
    assert "_" in raw
    assert b"hx-closeup??>>" in event.images[1].data  # bytes that encode to '/' and '+'


def test_hxzx_offline() -> None:
    event = read("hxzx", "offline.form")
    assert event.offline is True
    assert (event.plate, event.color, event.direction) == ("粤BD12345", "green", "out")
    assert event.images == ()


def test_hxzx_no_plate() -> None:
    event = read("hxzx", "no_plate.form")
    assert event.plate is None
    assert event.raw_plate == "无牌车"
    assert event.color is None


def test_hxzx_heartbeat() -> None:
    assert parse("hxzx", "heartbeat.form") == Heartbeat(vendor="hxzx", serial="HX0A1B2C3D4E")


def _declared_lengths(body: bytes) -> list[int]:
    return [int(n) for n in re.findall(rb"Content-Type: image/jpeg\r\nContent-Length: (\d+)", body)]


def test_hikvision_anpr() -> None:
    event = read("hikvision", "anpr.multipart")
    assert (event.serial, event.plate, event.raw_plate) == (
        "bc:ba:c2:5a:31:7e",
        "粤B12345",
        "粤B12345",
    )
    assert (event.color, event.confidence, event.direction) == ("blue", 92, "forward")
    assert event.read_at == datetime(2024, 2, 20, 6, 30, 45, tzinfo=UTC)
    assert event.read_at is not None
    assert event.read_at.utcoffset() is not None
    assert event.read_id == "bc:ba:c2:5a:31:7e|2024-02-20T06:30:45+00:00|粤B12345"
    assert event.offline is False
    assert [(i.name, i.content_type) for i in event.images] == [
        ("licensePlatePicture.jpg", "image/jpeg"),
        ("detectionPicture.jpg", "image/jpeg"),
    ]
    assert all(is_jpeg(i.data) for i in event.images)
    body = load("hikvision", "anpr.multipart").body
    assert [len(i.data) for i in event.images] == _declared_lengths(body)
    assert all(b"\r\n--\r\n" in i.data for i in event.images)  # binary survives intact


def test_hikvision_no_plate() -> None:
    event = read("hikvision", "anpr_no_plate.multipart")
    assert event.plate is None
    assert event.raw_plate == "无车牌"
    assert event.color is None
    assert event.images == ()


def test_hikvision_videoloss_inactive_is_a_heartbeat() -> None:
    assert parse("hikvision", "heartbeat.xml") == Heartbeat(
        vendor="hikvision", serial="bc:ba:c2:5a:31:7e", ipaddr="192.168.1.64"
    )


def test_dahua_tollgate() -> None:
    event = read("dahua", "tollgate.json")
    assert (event.serial, event.plate, event.color, event.confidence) == (
        "6J0B4A1PAZ4F7C3",
        "粤B12345",
        "blue",
        92,
    )
    assert event.read_at == datetime(2024, 2, 20, 14, 30, 45, 123000, tzinfo=SHANGHAI)
    assert event.read_at == datetime(2024, 2, 20, 6, 30, 45, 123000, tzinfo=UTC)
    assert event.direction == "forward"
    assert event.read_id == "6J0B4A1PAZ4F7C3|2024-02-20T06:30:45.123000+00:00|粤B12345"
    assert [i.name for i in event.images] == [
        "6J0B4A1PAZ4F7C3-20240220143045123-1.jpg",
        "6J0B4A1PAZ4F7C3-20240220143045123-2.jpg",
    ]
    assert all(is_jpeg(i.data) for i in event.images)


def test_dahua_local_time_follows_the_given_zone() -> None:
    event = adapter("dahua").parse(load("dahua", "tollgate.json"), tz=ZoneInfo("Asia/Tokyo"))
    assert isinstance(event, PlateRead)
    assert event.read_at == datetime(2024, 2, 20, 5, 30, 45, 123000, tzinfo=UTC)


def test_dahua_no_plate() -> None:
    event = read("dahua", "tollgate_no_plate.json")
    assert (event.plate, event.raw_plate, event.color) == (None, "", None)


def test_dahua_keepalive() -> None:
    assert parse("dahua", "keepalive.json") == Heartbeat(vendor="dahua", serial="6J0B4A1PAZ4F7C3")


def test_dahua_keepalive_is_recognised_without_the_path() -> None:
    push = load("dahua", "keepalive.json")
    event = adapter("dahua").parse(HttpPush(push.content_type, push.body))
    assert isinstance(event, Heartbeat)


@pytest.mark.parametrize(
    ("raw", "plate"),
    [
        ("粤b·12345", "粤B12345"),
        ("粤Ｂ１２３４５", "粤B12345"),
        (" _无_ ", None),
        ("无牌车", None),
        ("unknown", None),
        ("", None),
        ("粤ZJ068澳|MX7742|ZM127", "粤ZJ068澳"),
        ("MX7742|粤ZJ068港", "粤ZJ068港"),
        ("粤B1234", "粤B1234"),  # a misread is still a read, kept as read
    ],
)
def test_vzenith_license_readings(raw: str, plate: str | None) -> None:
    doc = json.loads(load("vzenith", "plate.json").body)
    doc["AlarmInfoPlate"]["result"]["PlateResult"]["license"] = raw
    push = HttpPush("application/json", json.dumps(doc, ensure_ascii=False).encode())
    event = adapter("vzenith").parse(push)
    assert isinstance(event, PlateRead)
    assert (event.plate, event.raw_plate) == (plate, raw)
