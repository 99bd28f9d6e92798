"""Builders of vendor-shaped camera pushes, for the camera simulator and tests.

Each builder is the inverse of the matching ``eppark.devices.lpr`` parser:
``parse(build_push(v, serial, plate, at, plate_id=n))`` gives back the serial,
the plate (None for no plate), ``at`` truncated to ``TIME_RESOLUTION[v]``,
the offline flag and the pictures. Shapes follow protocols.md: Vzenith
``AlarmInfoPlate`` JSON (``license`` ``_无_`` for no plate, ``plateid``,
``isoffline``, ``timeStamp.Timeval``), HXZX urlencoded form (``plate_val``
false for no plate, pictures in the ``-_.`` base64 variant), Hikvision
multipart ``anpr.xml`` + JPEG parts (``isDataRetransmission`` for backlog),
Dahua ``TollgateInfo`` JSON (``IsExist`` false for no plate, ``AccurateTime``
in camera-local time; Dahua has no offline flag). Pictures are a small real
JPEG with a comment holding every byte value, so that binary safety is
exercised too and the photos show in the back office.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from eppark.devices.lpr.events import DEFAULT_TZ, HttpPush, Vendor
from eppark.sim.picture import CAR_JPEG

TIME_RESOLUTION: Final[dict[Vendor, timedelta]] = {
    "vzenith": timedelta(microseconds=1),
    "hxzx": timedelta(seconds=1),
    "hikvision": timedelta(seconds=1),
    "dahua": timedelta(milliseconds=1),
}
"""The finest time step each vendor's push carries."""

HIKVISION_BOUNDARY: Final = "MIME_boundary"
VZENITH_BOUNDARY: Final = "------------------------caa771fe4a61f3d9"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_JSON: Final = "application/json"
_FORM: Final = "application/x-www-form-urlencoded"

_PartSpec = tuple[str, str | None, str | None, bytes]


def fake_jpeg(seed: str) -> bytes:
    """A small real JPEG (``sim.picture``) with a comment holding ``seed`` and every byte value."""
    comment = seed.encode("utf-8")[:200] + bytes(range(256))
    com = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    after_app0 = 4 + int.from_bytes(CAR_JPEG[4:6], "big")  # SOI, then the JFIF segment
    return CAR_JPEG[:after_app0] + com + CAR_JPEG[after_app0:]


def truncate(at: datetime, vendor: Vendor) -> datetime:
    """``at`` cut down to the time step the vendor's push can carry."""
    return at - ((at - _EPOCH) % TIME_RESOLUTION[vendor])


def build_push(
    vendor: Vendor,
    serial: str,
    plate: str | None,
    at: datetime,
    *,
    plate_id: int,
    offline: bool = False,
    with_image: bool = True,
    tz: ZoneInfo = DEFAULT_TZ,
) -> HttpPush:
    """A vendor-shaped push of one read of ``plate`` (None: no plate) at ``at`` (aware)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be an aware datetime")
    at = truncate(at, vendor)
    if vendor == "vzenith":
        return _vzenith(serial, plate, at, plate_id, offline, with_image)
    if vendor == "hxzx":
        return _hxzx(serial, plate, at, plate_id, offline, with_image)
    if vendor == "hikvision":
        return _hikvision(serial, plate, at, plate_id, offline, with_image, tz)
    if vendor == "dahua":
        if offline:
            raise ValueError("Dahua pushes carry no offline flag")
        return _dahua(serial, plate, at, plate_id, with_image, tz)
    raise ValueError(f"unknown vendor {vendor!r}")


def build_heartbeat(vendor: Vendor, serial: str, *, ipaddr: str = "192.168.1.100") -> HttpPush:
    """A vendor-shaped heartbeat from camera ``serial``."""
    if vendor == "vzenith":
        fields = {
            "device_name": "IVS",
            "ipaddr": ipaddr,
            "port": "80",
            "user_name": "admin",
            "pass_wd": "admin",
            "serialno": serial,
            "channel_num": "1",
        }
        parts: list[_PartSpec] = [
            (name, None, None, value.encode("utf-8")) for name, value in fields.items()
        ]
        return _multipart(VZENITH_BOUNDARY, parts)
    if vendor == "hxzx":
        body = urlencode({"type": "heartbeat", "mode": "5", "park_id": "P0001", "cam_id": serial})
        return HttpPush(_FORM, body.encode("ascii"))
    if vendor == "hikvision":
        xml = _hikvision_xml(serial, ipaddr, "videoloss", "inactive", "")
        return HttpPush("application/xml; charset=UTF-8", xml.encode("utf-8"))
    if vendor == "dahua":
        body = json.dumps({"Active": "keepAlive", "DeviceID": serial})
        return HttpPush(_JSON, body.encode("utf-8"), path="NotificationInfo/KeepAlive")
    raise ValueError(f"unknown vendor {vendor!r}")


def _json_push(doc: dict[str, Any], path: str = "") -> HttpPush:
    return HttpPush(_JSON, json.dumps(doc, ensure_ascii=False).encode("utf-8"), path=path)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _vzenith(
    serial: str, plate: str | None, at: datetime, plate_id: int, offline: bool, with_image: bool
) -> HttpPush:
    sec, usec = divmod((at - _EPOCH) // timedelta(microseconds=1), 1_000_000)
    local = at.astimezone(DEFAULT_TZ)
    result: dict[str, Any] = {
        "bright": 0,
        "carBright": 0,
        "carColor": 255,
        "colorType": 1 if plate is not None else 0,
        "confidence": 96 if plate is not None else 0,
        "direction": 4,
        "gioouts": [{"ctrltype": 0, "ionum": "0"}],
        "imagePath": f"picture/0/{local:%Y%m%d_%H%M%S}_{usec // 1000:03d}.jpg",
        "is_fake_plate": 0,
        "isoffline": 1 if offline else 0,
        "license": plate if plate is not None else "_无_",
        "location": {"RECT": {"bottom": 674, "left": 1002, "right": 1263, "top": 565}},
        "plateid": plate_id,
        "timeStamp": {
            "Timeval": {
                "decday": local.day,
                "dechour": local.hour,
                "decmin": local.minute,
                "decmon": local.month,
                "decsec": local.second,
                "decyear": local.year,
                "sec": sec,
                "usec": usec,
            }
        },
        "timeUsed": 0,
        "triggerType": 8,
        "type": 1 if plate is not None else 31,
    }
    if with_image:
        full = fake_jpeg(f"vzenith full {serial} {plate_id}")
        fragment = fake_jpeg(f"vzenith plate {serial} {plate_id}")
        result.update(
            imageFile=_b64(full),
            imageFileLen=len(full),
            imageFragmentFile=_b64(fragment),
            imageFragmentFileLen=len(fragment),
        )
    doc = {
        "AlarmInfoPlate": {
            "channel": 0,
            "deviceName": "IVS",
            "ipaddr": "192.168.1.100",
            "result": {"PlateResult": result},
            "rule_id": 1,
            "serialno": serial,
            "user_data": "",
        }
    }
    return _json_push(doc)


def _hxzx_b64(data: bytes) -> str:
    return _b64(data).translate(str.maketrans("+/=", "-_."))


def _hxzx(
    serial: str, plate: str | None, at: datetime, plate_id: int, offline: bool, with_image: bool
) -> HttpPush:
    fields = {
        "type": "offline" if offline else "online",
        "mode": "5",
        "park_id": "P0001",
        "plate_num": plate if plate is not None else "无牌车",
        "plate_color": "蓝色" if plate is not None else "",
        "plate_val": "true" if plate is not None else "false",
        "vehicle_type": "小型车",
        "start_time": str(int(at.timestamp())),
        "cam_id": serial,
        "vdc_type": "in",
        "is_whitelist": "false",
        "triger_type": "video",
    }
    if with_image:
        fields["picture"] = _hxzx_b64(fake_jpeg(f"hxzx full {serial} {plate_id}"))
        fields["closeup_pic"] = _hxzx_b64(fake_jpeg(f"hxzx plate {serial} {plate_id}"))
    return HttpPush(_FORM, urlencode(fields, encoding="utf-8").encode("ascii"))


def _hikvision_xml(serial: str, ipaddr: str, event_type: str, state: str, inner: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">\n'
        f"<ipAddress>{escape(ipaddr)}</ipAddress>\n"
        "<portNo>80</portNo>\n"
        "<protocol>HTTP</protocol>\n"
        f"<macAddress>{escape(serial)}</macAddress>\n"
        "<channelID>1</channelID>\n"
        f"{inner}"
        "<activePostCount>1</activePostCount>\n"
        f"<eventType>{event_type}</eventType>\n"
        f"<eventState>{state}</eventState>\n"
        f"<eventDescription>{event_type}</eventDescription>\n"
        "</EventNotificationAlert>\n"
    )


def _hikvision(
    serial: str,
    plate: str | None,
    at: datetime,
    plate_id: int,
    offline: bool,
    with_image: bool,
    tz: ZoneInfo,
) -> HttpPush:
    names = ("licensePlatePicture.jpg", "detectionPicture.jpg") if with_image else ()
    pictures = "".join(f"<pictureInfo><fileName>{name}</fileName></pictureInfo>" for name in names)
    inner = (
        f"<dateTime>{at.astimezone(tz).isoformat(timespec='seconds')}</dateTime>\n"
        f"<isDataRetransmission>{'true' if offline else 'false'}</isDataRetransmission>\n"
        "<ANPR>\n"
        "<country>3</country>\n"
        f"<licensePlate>{escape(plate) if plate is not None else '无车牌'}</licensePlate>\n"
        "<line>1</line>\n"
        "<direction>forward</direction>\n"
        f"<confidenceLevel>{92 if plate is not None else 0}</confidenceLevel>\n"
        "<plateType>92TypeCivil</plateType>\n"
        f"<plateColor>{'blue' if plate is not None else 'unknown'}</plateColor>\n"
        "<vehicleType>vehicle</vehicleType>\n"
        f"<pictureInfoList>{pictures}</pictureInfoList>\n"
        "</ANPR>\n"
        f"<UUID>ep-sim-{plate_id:012d}</UUID>\n"
    )
    xml = _hikvision_xml(serial, "192.168.1.64", "ANPR", "active", inner)
    parts: list[_PartSpec] = [("anpr.xml", "anpr.xml", "application/xml", xml.encode("utf-8"))]
    for name in names:
        parts.append((name, name, "image/jpeg", fake_jpeg(f"hikvision {name} {serial} {plate_id}")))
    return _multipart(HIKVISION_BOUNDARY, parts)


def _dahua(
    serial: str, plate: str | None, at: datetime, plate_id: int, with_image: bool, tz: ZoneInfo
) -> HttpPush:
    local = at.astimezone(tz)
    picture: dict[str, Any] = {
        "Plate": {
            "BoundingBox": [4544, 3540, 5120, 3720],
            "Channel": 0,
            "Confidence": 92 if plate is not None else 0,
            "IsExist": plate is not None,
            "PlateColor": "Blue" if plate is not None else "Unknown",
            "PlateNumber": plate if plate is not None else "",
            "PlateType": "Normal" if plate is not None else "Unknown",
        },
        "SnapInfo": {
            "AccurateTime": f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond // 1000:03d}",
            "DefenceCode": "ITC-SIM",
            "DeviceID": serial,
            "Direction": "Obverse",
            "LanNo": 1,
            "OpenStrobe": False,
            "SnapTime": f"{local:%Y-%m-%d %H:%M:%S}",
            "TriggerSource": "Video",
        },
        "Vehicle": {"VehicleColor": "White", "VehicleType": "PassengerCar"},
    }
    if with_image:
        for key, kind in (("NormalPic", "normal"), ("CutoutPic", "cutout")):
            picture[key] = {
                "Content": _b64(fake_jpeg(f"dahua {kind} {serial} {plate_id}")),
                "PicName": f"{local:%Y%m%d%H%M%S}_{plate_id}_{kind}.jpg",
            }
    return _json_push({"Picture": picture}, path="NotificationInfo/TollgateInfo")


def _multipart(boundary: str, parts: list[_PartSpec]) -> HttpPush:
    chunks: list[bytes] = []
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if content_type is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
        chunks.append(head.encode("utf-8") + b"\r\n" + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return HttpPush(f"multipart/form-data; boundary={boundary}", b"".join(chunks))
