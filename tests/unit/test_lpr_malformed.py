"""Malformed camera pushes are refused with BadPayload and a clear message, never a guess."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from eppark.devices.lpr import BadPayload, HttpPush, adapter
from eppark.domain.errors import BadInput
from tests.unit.test_lpr_fixtures import load

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def refused(vendor: str, push: HttpPush, **kwargs: Any) -> str:
    with pytest.raises(BadPayload) as caught:
        adapter(vendor).parse(push, **kwargs)
    assert isinstance(caught.value, BadInput)
    return str(caught.value)


def vzenith_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(load("vzenith", "plate.json").body)
    return doc


def vz(doc: Any) -> HttpPush:
    return HttpPush(JSON, json.dumps(doc, ensure_ascii=False).encode())


def plate_result(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = doc["AlarmInfoPlate"]["result"]["PlateResult"]
    return result


def test_vzenith_bad_json() -> None:
    assert "not JSON" in refused("vzenith", HttpPush(JSON, b'{"AlarmInfoPlate": {'))


def test_vzenith_neither_utf8_nor_gbk() -> None:
    body = b'{"AlarmInfoPlate": {"license": "\xff\xfe"}}'  # no GBK either
    assert "neither UTF-8 nor GBK" in refused("vzenith", HttpPush(JSON, body))


def test_vzenith_not_in_the_declared_charset() -> None:
    body = '{"AlarmInfoPlate": {"license": "粤B12345"}}'.encode("gbk")
    message = refused("vzenith", HttpPush("application/json; charset=utf-8", body))
    assert "not valid utf-8" in message


def test_vzenith_unknown_charset() -> None:
    push = HttpPush("application/json; charset=klingon", b"{}")
    assert "unknown charset 'klingon'" in refused("vzenith", push)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"heartbeat": 5}', "heartbeat: must be an object"),
        (b'{"Heartbeat": [1]}', "Heartbeat: must be an object"),
        (b'{"heartbeat": {"serialno": 7}}', "heartbeat.serialno: must be a string"),
    ],
)
def test_vzenith_broken_json_heartbeats(body: bytes, expected: str) -> None:
    assert expected in refused("vzenith", HttpPush(JSON, body))


def test_vzenith_json_array() -> None:
    assert "JSON object" in refused("vzenith", HttpPush(JSON, b"[1, 2]"))


def test_vzenith_missing_alarm_info_plate() -> None:
    message = refused("vzenith", vz({"AlarmGioIn": {"serialno": "x"}}))
    assert "missing AlarmInfoPlate" in message
    assert "AlarmGioIn" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["AlarmInfoPlate"].pop("serialno"), "AlarmInfoPlate.serialno: is required"),
        (lambda d: d["AlarmInfoPlate"].update(serialno=12), "serialno: must be a non-empty"),
        (lambda d: d["AlarmInfoPlate"].update(result=[]), "AlarmInfoPlate.result: must be"),
        (lambda d: d["AlarmInfoPlate"]["result"].pop("PlateResult"), "PlateResult: is required"),
        (lambda d: plate_result(d).update(license=None), "license: must be a string"),
        (lambda d: plate_result(d).update(license=12345), "license: must be a string"),
        (lambda d: plate_result(d).update(plateid=-3), "plateid: must not be negative"),
        (lambda d: plate_result(d).update(plateid="abc"), "plateid: must be an integer"),
        (lambda d: plate_result(d).update(plateid=True), "plateid: must be an integer"),
        (lambda d: plate_result(d).update(isoffline=2), "isoffline: must be 0 or 1"),
        (lambda d: plate_result(d).update(confidence=-1), "confidence: must not be negative"),
        (lambda d: plate_result(d).update(timeStamp="now"), "timeStamp: must be an object"),
        (
            lambda d: plate_result(d)["timeStamp"]["Timeval"].update(sec="x"),
            "Timeval.sec: must be an integer",
        ),
        (
            lambda d: plate_result(d)["timeStamp"]["Timeval"].update(usec=2_000_000),
            "usec: must be within",
        ),
        (
            lambda d: plate_result(d)["timeStamp"]["Timeval"].update(sec=10**17),
            "sec: is not a valid epoch time",
        ),
        (lambda d: plate_result(d).update(imageFile="@@not base64@@"), "imageFile: is not valid"),
        (lambda d: plate_result(d).update(imageFile="QUJD="), "imageFile: is not valid base64"),
        (lambda d: plate_result(d).update(imageFragmentFile=42), "must be a base64 string"),
    ],
)
def test_vzenith_wrong_fields(change: Any, expected: str) -> None:
    doc = vzenith_doc()
    change(doc)
    assert expected in refused("vzenith", vz(doc))


def test_vzenith_oversized_image() -> None:
    doc = vzenith_doc()
    plate_result(doc)["imageFile"] = base64.b64encode(
        b"\xff\xd8" + bytes(5000) + b"\xff\xd9"
    ).decode()
    message = refused("vzenith", vz(doc), max_image_bytes=4096)
    assert "imageFile: image is larger than 4096 bytes" in message
    assert adapter("vzenith").parse(vz(doc), max_image_bytes=10_000)


def test_vzenith_heartbeat_without_serial() -> None:
    push = load("vzenith", "heartbeat.multipart")
    body = push.body.replace(b'name="serialno"', b'name="serial"')
    assert "serialno: is required" in refused("vzenith", HttpPush(push.content_type, body))


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("multipart/form-data", b"--x\r\n\r\nhello\r\n--x--\r\n", "malformed multipart"),
        ("multipart/form-data; boundary=zz", b"no boundary anywhere", "malformed multipart"),
        (
            "multipart/form-data; boundary=zz",
            b'--zz\r\nContent-Disposition: form-data; name="serialno"\r\n\r\nabc\r\n',
            "malformed multipart",
        ),
        ("multipart/form-data; boundary=zz\r\nX-Evil: 1", b"", "single header line"),
        ("image/jpeg", b"\xff\xd8\xff\xd9", "expected a form body"),
    ],
)
def test_vzenith_broken_heartbeat_bodies(content_type: str, body: bytes, expected: str) -> None:
    assert expected in refused("vzenith", HttpPush(content_type, body))


def hxzx_fields() -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(load("hxzx", "online.form").body.decode()))


def hx(fields: dict[str, str]) -> HttpPush:
    from urllib.parse import urlencode

    return HttpPush(FORM, urlencode(fields).encode())


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda f: f.pop("type"), "type: is required"),
        (lambda f: f.update(type="sideways"), "type: must be one of online, offline, heartbeat"),
        (lambda f: f.pop("cam_id"), "cam_id: is required"),
        (lambda f: f.update(plate_val="maybe"), "plate_val: must be true or false"),
        (lambda f: f.update(start_time="yesterday"), "start_time: must be an integer"),
        (lambda f: f.update(picture="a+b/c="), "picture: is not valid base64"),
        (lambda f: f.update(closeup_pic="!!!!"), "closeup_pic: is not valid base64"),
    ],
)
def test_hxzx_wrong_fields(change: Any, expected: str) -> None:
    fields = hxzx_fields()
    change(fields)
    assert expected in refused("hxzx", hx(fields))


def test_hxzx_oversized_image() -> None:
    assert "picture: image is larger than 100 bytes" in refused(
        "hxzx", load("hxzx", "online.form"), max_image_bytes=100
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"type=online&cam_id=A&cam_id=B", "cam_id: is given twice"),
        (b"type=online&cam_id", "malformed form body"),
        (b"type=online&cam_id=%FF%FE", "not percent-encoded UTF-8"),
        (b"type=online&cam_id=\xff\xff", "neither UTF-8 nor GBK"),
        (b"&".join(b"f%d=1" % i for i in range(500)), "malformed form body"),
    ],
)
def test_hxzx_broken_forms(body: bytes, expected: str) -> None:
    assert expected in refused("hxzx", HttpPush(FORM, body))


def test_hxzx_json_is_not_a_form() -> None:
    assert "expected a form body" in refused("hxzx", HttpPush(JSON, b"{}"))


def hik_multipart(xml: bytes, *, with_xml: bool = True) -> HttpPush:
    parts = []
    if with_xml:
        parts.append(
            b'--b\r\nContent-Disposition: form-data; name="anpr.xml"; filename="anpr.xml"\r\n'
            b"Content-Type: text/xml\r\n\r\n" + xml + b"\r\n"
        )
    parts.append(
        b'--b\r\nContent-Disposition: form-data; name="detectionPicture.jpg"; '
        b'filename="detectionPicture.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        + b"\xff\xd8"
        + bytes(300)
        + b"\xff\xd9\r\n"
    )
    return HttpPush("multipart/form-data; boundary=b", b"".join(parts) + b"--b--\r\n")


def hik_xml() -> bytes:
    body = load("hikvision", "anpr.multipart").body
    start = body.index(b"<?xml")
    return body[start : body.index(b"</EventNotificationAlert>") + 25]


def test_hikvision_multipart_without_xml() -> None:
    message = refused("hikvision", hik_multipart(b"", with_xml=False))
    assert "no XML part" in message


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        (b"<EventNotificationAlert><eventType>ANPR", "XML is malformed"),
        (b"<ResponseStatus><statusCode>1</statusCode></ResponseStatus>", "root ResponseStatus"),
        (
            b'<!DOCTYPE x [<!ENTITY a "aaaa">]><EventNotificationAlert/>',
            "DOCTYPE or entities",
        ),
        (
            b"<EventNotificationAlert><macAddress>m</macAddress>"
            b"<eventType>VMD</eventType></EventNotificationAlert>",
            "not an ANPR EventNotificationAlert (eventType VMD)",
        ),
        (
            b"<EventNotificationAlert><macAddress>m</macAddress>"
            b"<eventType>ANPR</eventType></EventNotificationAlert>",
            "not an ANPR EventNotificationAlert",
        ),
        (
            b"<EventNotificationAlert><eventType>ANPR</eventType><ANPR>"
            b"<licensePlate>A</licensePlate></ANPR><dateTime>noon</dateTime>"
            b"</EventNotificationAlert>",
            "dateTime: is not an ISO 8601 time",
        ),
        (
            b"<EventNotificationAlert><macAddress>m</macAddress><eventType>ANPR</eventType>"
            b"<ANPR></ANPR></EventNotificationAlert>",
            "ANPR.licensePlate: is required",
        ),
    ],
)
def test_hikvision_bad_xml(xml: bytes, expected: str) -> None:
    assert expected in refused("hikvision", hik_multipart(xml))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (b"2024-02-20T14:30:45+08:00", b"yesterday", "dateTime: is not an ISO 8601 time"),
        (b"<confidenceLevel>92", b"<confidenceLevel>high", "confidenceLevel: must be an integer"),
        (b">false</isDataRetransmission>", b">perhaps</isDataRetransmission>", "true or false"),
    ],
)
def test_hikvision_wrong_values(old: bytes, new: bytes, expected: str) -> None:
    xml = hik_xml()
    assert old in xml
    assert expected in refused("hikvision", hik_multipart(xml.replace(old, new)))


def test_hikvision_oversized_picture() -> None:
    message = refused("hikvision", load("hikvision", "anpr.multipart"), max_image_bytes=64)
    assert "licensePlatePicture.jpg: image is larger than 64 bytes" in message


def test_hikvision_wrong_content_type() -> None:
    assert "expected multipart/form-data or XML" in refused("hikvision", HttpPush(JSON, b"{}"))


def test_hikvision_truncated_multipart() -> None:
    push = load("hikvision", "anpr.multipart")
    truncated = HttpPush(push.content_type, push.body[: len(push.body) // 2])
    assert "malformed multipart" in refused("hikvision", truncated)


def dahua_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(load("dahua", "tollgate.json").body)
    return doc


def dh(doc: Any, path: str = "NotificationInfo/TollgateInfo") -> HttpPush:
    return HttpPush(JSON, json.dumps(doc, ensure_ascii=False).encode(), path=path)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("Picture"), "TollgateInfo without Picture"),
        (lambda d: d.update(Picture="x"), "Picture: must be an object"),
        (lambda d: d["Picture"]["SnapInfo"].pop("DeviceID"), "SnapInfo.DeviceID: is required"),
        (lambda d: d["Picture"]["Plate"].update(PlateNumber=1), "PlateNumber: must be a string"),
        (lambda d: d["Picture"]["Plate"].update(IsExist="yes"), "IsExist: must be true or false"),
        (lambda d: d["Picture"]["Plate"].update(Confidence="x"), "Confidence: must be an integer"),
        (
            lambda d: d["Picture"]["SnapInfo"].update(AccurateTime="20/02/2024 14:30"),
            'AccurateTime: must look like "2024-02-20 14:30:45.123"',
        ),
        (
            lambda d: d["Picture"]["SnapInfo"].update(AccurateTime="2024-02-30 14:30:45.123"),
            "AccurateTime: is not a valid time",
        ),
        (lambda d: d["Picture"]["NormalPic"].update(Content="%%%"), "NormalPic.Content: is not"),
    ],
)
def test_dahua_wrong_fields(change: Any, expected: str) -> None:
    doc = dahua_doc()
    change(doc)
    assert expected in refused("dahua", dh(doc))


def test_dahua_oversized_picture() -> None:
    message = refused("dahua", load("dahua", "tollgate.json"), max_image_bytes=10)
    assert "NormalPic.Content: image is larger than 10 bytes" in message


def test_dahua_keepalive_without_device() -> None:
    message = refused("dahua", dh({"Active": "keepAlive"}, "NotificationInfo/KeepAlive"))
    assert "DeviceID: is required" in message
    message = refused(
        "dahua", dh({"Active": "sleep", "DeviceID": "x"}, "/NotificationInfo/KeepAlive")
    )
    assert 'Active: must be "keepAlive"' in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{}", "DeviceID: is required"),
        (b'{"DeviceID": 7}', "DeviceID: must be a string"),
        (b'{"DeviceInfo": {"DeviceName": "x"}}', "DeviceInfo.DeviceID: is required"),
        (b'{"DeviceInfo": "x"}', "DeviceInfo: must be an object"),
    ],
)
def test_dahua_broken_device_info(body: bytes, expected: str) -> None:
    push = HttpPush(JSON, body, path="NotificationInfo/DeviceInfo")
    assert expected in refused("dahua", push)


def test_dahua_unknown_notification() -> None:
    assert "unknown Dahua notification" in refused("dahua", dh(dahua_doc(), "NotificationInfo/Foo"))
