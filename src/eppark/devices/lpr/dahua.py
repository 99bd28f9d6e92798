"""Dahua ITC (ITSAPI) JSON push: TollgateInfo plate reads, KeepAlive and replies.

``POST …/NotificationInfo/TollgateInfo``: ``{"Picture": {"Plate": {"PlateNumber",
"PlateColor" (Blue, Yellow, White, Black, Green, YellowGreen…), "PlateType",
"Confidence", "IsExist"}, "SnapInfo": {"DeviceID" (the serial),
"AccurateTime" ("2024-02-20 14:30:45.123", camera-local time, read in the
``tz`` given), "SnapTime", "Direction" (Obverse | Reverse)}, "NormalPic"
{"Content" (base64 JPEG), "PicName"}, "CutoutPic", "VehiclePic"}}``. A plate
with ``IsExist`` false, or an empty/``无车牌`` number, is "no plate read".
Dahua sends no read id: it is derived from DeviceID, AccurateTime and
PlateNumber; it sends no offline flag either.
``POST …/NotificationInfo/KeepAlive``: ``{"Active": "keepAlive", "DeviceID"}``.
``POST …/NotificationInfo/DeviceInfo``: the camera registers when its push
starts, ``{"DeviceID" (the serial), "DeviceName", "DeviceModel", "DeviceType",
"Manufacturer", "IPAddress"}`` (some firmware wraps them in ``"DeviceInfo"``);
it is read as a heartbeat of variant ``"registration"``.
Reply ``{"Result":true}`` to all three, or the camera re-sends. The barrier opens
through the camera's API (``barrier.async_open_barrier``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from eppark.devices.lpr.events import (
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_TZ,
    BadPayload,
    Color,
    Direction,
    Event,
    Heartbeat,
    HttpPush,
    Image,
    PlateRead,
    Reply,
    choose_plate,
    confidence_value,
    decode_base64,
    derive_read_id,
    json_object,
    json_reply,
    optional_int,
    optional_mapping,
    require_str,
)

VENDOR: Final = "dahua"
OPENS_BY_REPLY: Final = False
"""The reply only acknowledges; opening is ``trafficSnap.cgi?action=openStrobe``."""

TOLLGATE_PATH: Final = "NotificationInfo/TollgateInfo"
KEEPALIVE_PATH: Final = "NotificationInfo/KeepAlive"
DEVICE_INFO_PATH: Final = "NotificationInfo/DeviceInfo"

COLORS: Final[dict[str, Color]] = {
    "blue": "blue",
    "yellow": "yellow",
    "white": "white",
    "black": "black",
    "green": "green",
    "yellowgreen": "yellow_green",
}
DIRECTIONS: Final[dict[str, Direction]] = {"obverse": "forward", "reverse": "reverse"}
PICTURES: Final = (
    ("NormalPic", "normal.jpg"),
    ("CutoutPic", "cutout.jpg"),
    ("VehiclePic", "vehicle.jpg"),
)

_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?")


def parse(
    push: HttpPush,
    *,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    tz: ZoneInfo = DEFAULT_TZ,
) -> Event:
    """The plate read or heartbeat in a Dahua ITSAPI push (``tz``: the camera's time zone)."""
    path = push.path.strip("/")
    doc = json_object(push)
    if path.endswith("KeepAlive") or (not path and "Picture" not in doc and "Active" in doc):
        return _parse_keepalive(doc)
    if path.endswith("DeviceInfo"):
        return _parse_device_info(doc)
    if path and not path.endswith("TollgateInfo"):
        raise BadPayload(f"unknown Dahua notification {path!r}")
    return _parse_tollgate(doc, max_image_bytes, tz)


def _parse_keepalive(doc: dict[str, Any]) -> Heartbeat:
    active = doc.get("Active")
    if not isinstance(active, str) or active.lower() != "keepalive":
        raise BadPayload('must be "keepAlive"', "Active")
    return Heartbeat(vendor=VENDOR, serial=require_str(doc, "DeviceID", ""))


def _optional_text(doc: dict[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadPayload("must be a string", f"{where}{key}")
    return value.strip() or None


def _parse_device_info(doc: dict[str, Any]) -> Heartbeat:
    where = ""
    if "DeviceInfo" in doc:
        doc, where = optional_mapping(doc, "DeviceInfo", ""), "DeviceInfo."
    serial = _optional_text(doc, "DeviceID", where) or _optional_text(doc, "SerialNo", where)
    if serial is None:
        raise BadPayload("is required", f"{where}DeviceID")
    return Heartbeat(
        vendor=VENDOR,
        serial=serial,
        ipaddr=_optional_text(doc, "IPAddress", where),
        device_name=_optional_text(doc, "DeviceName", where),
        variant="registration",
        model=_optional_text(doc, "DeviceModel", where),
    )


def _parse_tollgate(doc: dict[str, Any], max_image_bytes: int, tz: ZoneInfo) -> PlateRead:
    if "Picture" not in doc:
        raise BadPayload("TollgateInfo without Picture")
    picture = optional_mapping(doc, "Picture", "")
    plate_info = optional_mapping(picture, "Plate", "Picture")
    snap = optional_mapping(picture, "SnapInfo", "Picture")
    serial = require_str(snap, "DeviceID", "Picture.SnapInfo")
    raw_plate = plate_info.get("PlateNumber", "")
    if not isinstance(raw_plate, str):
        raise BadPayload("must be a string", "Picture.Plate.PlateNumber")
    exists = plate_info.get("IsExist", True)
    if not isinstance(exists, bool):
        raise BadPayload("must be true or false", "Picture.Plate.IsExist")
    read_at = _local_time(snap.get("AccurateTime") or snap.get("SnapTime"), tz)
    images: list[Image] = []
    for key, default_name in PICTURES:
        pic = optional_mapping(picture, key, "Picture")
        if pic.get("Content") in (None, ""):
            continue
        data = decode_base64(pic["Content"], f"Picture.{key}.Content", max_image_bytes)
        name = pic.get("PicName")
        images.append(
            Image(
                name=name if isinstance(name, str) and name else default_name,
                content_type="image/jpeg",
                data=data,
            )
        )
    color = plate_info.get("PlateColor")
    direction = snap.get("Direction")
    return PlateRead(
        vendor=VENDOR,
        serial=serial,
        plate=choose_plate(raw_plate) if exists else None,
        raw_plate=raw_plate,
        color=COLORS.get(color.lower()) if isinstance(color, str) else None,
        confidence=confidence_value(
            optional_int(plate_info, "Confidence", "Picture.Plate"), "Picture.Plate.Confidence"
        ),
        read_at=read_at,
        read_id=derive_read_id(serial, read_at, raw_plate),
        offline=False,
        direction=DIRECTIONS.get(direction.lower()) if isinstance(direction, str) else None,
        images=tuple(images),
    )


def _local_time(value: Any, tz: ZoneInfo) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadPayload("must be a string", "Picture.SnapInfo.AccurateTime")
    match = _TIME.fullmatch(value.strip())
    if match is None:
        raise BadPayload(
            f'must look like "2024-02-20 14:30:45.123", not {value!r}',
            "Picture.SnapInfo.AccurateTime",
        )
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError as exc:
        raise BadPayload(f"is not a valid time: {exc}", "Picture.SnapInfo.AccurateTime") from None


def reply(event: Event, *, open: bool = False) -> Reply:
    """``{"Result":true}`` for a read or a KeepAlive (the camera re-sends without it)."""
    if open:
        raise ValueError("Dahua opens through the camera API, not through the reply")
    return json_reply({"Result": True})
