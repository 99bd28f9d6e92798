"""Vzenith (臻识) / Qianyi (芊熠) IVS HTTP push: plate reads, heartbeats and replies.

Plate push: JSON ``{"AlarmInfoPlate": {"serialno", "ipaddr", "deviceName",
"result": {"PlateResult": {...}}}}`` where PlateResult carries ``license``
(``_无_`` when no plate was read; cross-border cars ``粤ZJ068澳|MX7742|ZM127``),
``colorType`` (0 unknown, 1 blue, 2 yellow, 3 white, 4 black, 5 green,
6 yellow-green), ``confidence`` (1-100), ``direction`` (0 unknown, 1 left,
2 right, 3 up, 4 down), ``timeStamp.Timeval.sec``/``usec`` (epoch),
``plateid`` (the dedup id, with ``serialno``), ``isoffline`` (1 for the
offline backlog), ``imageFile``/``imageFragmentFile`` (base64 JPEG, optional).
``type`` is ignored: its codes differ between firmware generations.
Older firmware and the Qianyi (芊熠) family (ParkingCam, Alphadigi) send no
``plateid``, ``isoffline`` or ``gioouts`` (the vendor document lists them as
"new" fields): such a read is online, and its read id is derived from its
content (serial, time, plate, image path), stable across the camera's re-sends.

Heartbeat ("device registration"): multipart/form-data (urlencoded tolerated)
with ``device_name, ipaddr, port, user_name, pass_wd, serialno, channel_num``;
``pass_wd`` is never kept. The JSON variant, ``{"heartbeat": {"countid",
"timeStamp", "serialno", …}}`` (Qianyi/Alphadigi; some firmware spells it
``Heartbeat``), is answered with ``{"Response_Heartbeat": {"info": "ok"|"no",
"serialData": […]}}``, which carries a queued open as the comet reply does.

Replies (``Response_AlarmInfoPlate``): ``info`` "ok" opens, "no" keeps shut;
``content`` "retransfer_stop" stops re-sends; ``is_pay``; ``plateid`` echoes an
online read; ``serialData`` (base64 RS-485 bytes with ``serialChannel`` and
``dataLen``); ``ContinuePushOffline {plateid, continue}`` acknowledges a
backlog record; ``ivs_ioctrl {delay, io, value}`` drives an output. A
heartbeat reply (comet mode) may carry a queued open. The MQTT variant's
base64 ``license`` is not supported (HTTP only).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    form_fields,
    is_json,
    json_object,
    json_reply,
    optional_int,
    optional_mapping,
    require_str,
)

VENDOR: Final = "vzenith"
OPENS_BY_REPLY: Final = True
"""The reply to a push (or to a comet heartbeat) is what opens the barrier."""

COLOR_TYPES: Final[dict[int, Color]] = {
    1: "blue",
    2: "yellow",
    3: "white",
    4: "black",
    5: "green",
    6: "yellow_green",
}
DIRECTIONS: Final[dict[int, Direction]] = {1: "left", 2: "right", 3: "up", 4: "down"}

HEARTBEAT_KEYS: Final = ("heartbeat", "Heartbeat")
"""Top-level keys of the JSON heartbeat (Qianyi/Alphadigi ``heartbeat``; ``Heartbeat``)."""

_WHERE = "AlarmInfoPlate.result.PlateResult"


@dataclass(frozen=True)
class SerialData:
    """Bytes for the camera to write to one of its serial ports (RS-485 display, voice)."""

    data: bytes
    channel: int = 0


@dataclass(frozen=True)
class IoCtrl:
    """An ``ivs_ioctrl`` output command: ``value`` 0 off, 1 on, 2 pulse for ``delay`` ms."""

    io: int = 0
    value: int = 2
    delay: int = 500


def parse(
    push: HttpPush,
    *,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    tz: ZoneInfo = DEFAULT_TZ,
) -> Event:
    """The plate read or heartbeat in a Vzenith push (``tz`` is unused: times are epoch)."""
    if is_json(push):
        doc = json_object(push)
        for key in HEARTBEAT_KEYS:
            if key in doc and "AlarmInfoPlate" not in doc:
                return _parse_json_heartbeat(doc[key], key)
        return _parse_plate(doc, max_image_bytes)
    return _parse_heartbeat(form_fields(push))


def _parse_json_heartbeat(body: Any, key: str) -> Heartbeat:
    if not isinstance(body, dict):
        raise BadPayload("must be an object", key)
    serial = body.get("serialno", "")
    if not isinstance(serial, str):
        raise BadPayload("must be a string", f"{key}.serialno")
    ipaddr = body.get("ipaddr")
    return Heartbeat(
        vendor=VENDOR,
        serial=serial.strip(),
        ipaddr=ipaddr if isinstance(ipaddr, str) and ipaddr else None,
        variant="json",
    )


def _parse_heartbeat(fields: dict[str, str]) -> Heartbeat:
    serial = require_str(fields, "serialno", "")
    return Heartbeat(
        vendor=VENDOR,
        serial=serial,
        ipaddr=fields.get("ipaddr") or None,
        device_name=fields.get("device_name") or None,
    )


def _parse_plate(doc: dict[str, Any], max_image_bytes: int) -> PlateRead:
    alarm = doc.get("AlarmInfoPlate")
    if alarm is None:
        keys = ", ".join(sorted(doc)[:5]) or "nothing"
        raise BadPayload(f"missing AlarmInfoPlate (got {keys})")
    if not isinstance(alarm, dict):
        raise BadPayload("must be an object", "AlarmInfoPlate")
    serial = require_str(alarm, "serialno", "AlarmInfoPlate")
    result = optional_mapping(alarm, "result", "AlarmInfoPlate")
    if "PlateResult" not in result:
        raise BadPayload("is required", "AlarmInfoPlate.result.PlateResult")
    plate_result = optional_mapping(result, "PlateResult", "AlarmInfoPlate.result")
    license_ = plate_result.get("license")
    if not isinstance(license_, str):
        raise BadPayload("must be a string", f"{_WHERE}.license")
    plate_id = optional_int(plate_result, "plateid", _WHERE)
    if plate_id is not None and plate_id < 0:
        raise BadPayload("must not be negative", f"{_WHERE}.plateid")
    offline = optional_int(plate_result, "isoffline", _WHERE)
    if offline not in (None, 0, 1):
        raise BadPayload("must be 0 or 1", f"{_WHERE}.isoffline")
    color = optional_int(plate_result, "colorType", _WHERE)
    direction = optional_int(plate_result, "direction", _WHERE)
    images: list[Image] = []
    for key, name in (("imageFile", "full.jpg"), ("imageFragmentFile", "plate.jpg")):
        if plate_result.get(key) in (None, ""):
            continue
        data = decode_base64(plate_result[key], f"{_WHERE}.{key}", max_image_bytes)
        if data:
            images.append(Image(name=name, content_type="image/jpeg", data=data))
    read_at = _read_at(plate_result)
    return PlateRead(
        vendor=VENDOR,
        serial=serial,
        plate=choose_plate(license_),
        raw_plate=license_,
        color=COLOR_TYPES.get(color) if color is not None else None,
        confidence=confidence_value(
            optional_int(plate_result, "confidence", _WHERE), f"{_WHERE}.confidence"
        ),
        read_at=read_at,
        read_id=str(plate_id)
        if plate_id is not None
        else _derived_id(serial, read_at, plate_result),
        offline=offline == 1,
        direction=DIRECTIONS.get(direction) if direction is not None else None,
        images=tuple(images),
    )


def _derived_id(serial: str, read_at: datetime | None, plate_result: dict[str, Any]) -> str:
    """A read id for firmware that sends no ``plateid``: from what the read says."""
    license_ = str(plate_result.get("license", ""))
    image_path = plate_result.get("imagePath")
    if isinstance(image_path, str) and image_path:
        license_ = f"{license_}|{image_path}"
    return derive_read_id(serial, read_at, license_)


def vendor_plate_id(read_id: str) -> int | None:
    """The camera's own ``plateid`` behind a read id (None: the id was derived)."""
    return int(read_id) if read_id.isdigit() else None


def _read_at(plate_result: dict[str, Any]) -> datetime | None:
    stamp = optional_mapping(plate_result, "timeStamp", _WHERE)
    timeval = optional_mapping(stamp, "Timeval", f"{_WHERE}.timeStamp")
    where = f"{_WHERE}.timeStamp.Timeval"
    sec = optional_int(timeval, "sec", where)
    if sec is None:
        return None
    usec = optional_int(timeval, "usec", where) or 0
    if not 0 <= usec < 1_000_000:
        raise BadPayload("must be within 0..999999", f"{where}.usec")
    try:
        return datetime.fromtimestamp(sec, UTC) + timedelta(microseconds=usec)
    except (OverflowError, OSError, ValueError):
        raise BadPayload("is not a valid epoch time", f"{where}.sec") from None


def _serial_data(items: Sequence[SerialData]) -> list[dict[str, Any]]:
    return [
        {
            "serialChannel": item.channel,
            "data": base64.b64encode(item.data).decode("ascii"),
            "dataLen": len(item.data),
        }
        for item in items
    ]


def plate_reply(
    *,
    open: bool,
    plate_id: int | None = None,
    stop_retransfer: bool = True,
    is_pay: bool | None = None,
    serial_data: Sequence[SerialData] = (),
) -> Reply:
    """The reply to an online read: ``info`` "ok" opens, "no" keeps the barrier shut."""
    body: dict[str, Any] = {"info": "ok" if open else "no"}
    if stop_retransfer:
        body["content"] = "retransfer_stop"
    if is_pay is not None:
        body["is_pay"] = "true" if is_pay else "false"
    if serial_data:
        body["serialData"] = _serial_data(serial_data)
    if plate_id is not None:
        body["plateid"] = plate_id
    return json_reply({"Response_AlarmInfoPlate": body})


def offline_reply(plate_id: int, *, continue_push: bool = True) -> Reply:
    """The reply to a backlog record: acknowledge it and ask for the next one (or stop)."""
    return json_reply(
        {
            "Response_AlarmInfoPlate": {
                "ContinuePushOffline": {"plateid": plate_id, "continue": 1 if continue_push else 0}
            }
        }
    )


def heartbeat_reply(
    *,
    open: bool = False,
    ioctrl: IoCtrl | None = None,
    serial_data: Sequence[SerialData] = (),
) -> Reply:
    """The reply to a heartbeat; in comet mode it carries a queued open or other command."""
    body: dict[str, Any] = {}
    if open:
        body["info"] = "ok"
    if ioctrl is not None:
        body["ivs_ioctrl"] = {"delay": ioctrl.delay, "io": ioctrl.io, "value": ioctrl.value}
    if serial_data:
        body["serialData"] = _serial_data(serial_data)
    return json_reply({"Response_AlarmInfoPlate": body})


def json_heartbeat_reply(*, open: bool = False, serial_data: Sequence[SerialData] = ()) -> Reply:
    """The reply to a JSON heartbeat: ``Response_Heartbeat`` with ``info`` ok (open) or no."""
    body: dict[str, Any] = {"info": "ok" if open else "no"}
    body["serialData"] = _serial_data(serial_data)
    return json_reply({"Response_Heartbeat": body})


def reply(event: Event, *, open: bool = False) -> Reply:
    """The reply to any parsed event: plate, backlog record or heartbeat."""
    if isinstance(event, Heartbeat):
        if event.variant == "json":
            return json_heartbeat_reply(open=open)
        return heartbeat_reply(open=open)
    plate_id = vendor_plate_id(event.read_id)
    if event.offline:
        if open:
            raise ValueError("a backlog record is past: it cannot open the barrier")
        if plate_id is not None:
            return offline_reply(plate_id)
    return plate_reply(open=open, plate_id=plate_id)
