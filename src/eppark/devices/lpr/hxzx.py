"""HXZX (华夏智信) HttpPost: form-encoded plate reads, heartbeats and replies.

Form fields (urlencoded; multipart tolerated): ``type`` online | offline |
heartbeat, ``cam_id`` (the serial), ``park_id``, ``mode``, ``plate_num``,
``plate_color`` (Chinese text: 蓝色, 黄色, 白色, 黑色, 绿色, 黄绿色, 渐变绿色),
``plate_val`` (true/false: false means no plate was read), ``vehicle_type``,
``start_time`` (epoch seconds), ``vdc_type`` (in | out), ``is_whitelist``,
``triger_type`` (video | hwtriger | swtriger), ``picture`` (scene) and
``closeup_pic`` (plate) — base64 with ``+``→``-``, ``/``→``_``, ``=``→``.`` so
that they survive form encoding. HXZX sends no read id: it is derived from
``cam_id``, ``start_time`` and ``plate_num``.

Replies: ``{"error_num":0,"error_str":"noerror","gpio_data":[{"ionum":"io1",
"action":"on"}]}`` opens (io1 on); without ``gpio_data`` the barrier stays
shut; a heartbeat gets ``{"error_num":0,"error_str":"noerror"}``.
"""

from __future__ import annotations

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
    decode_base64,
    derive_read_id,
    epoch_seconds,
    form_fields,
    json_reply,
    optional_int,
    require_str,
)

VENDOR: Final = "hxzx"
OPENS_BY_REPLY: Final = True
"""The reply's ``gpio_data`` (io1 on) is what opens the barrier."""

COLORS: Final[dict[str, Color]] = {
    "蓝": "blue",
    "黄": "yellow",
    "白": "white",
    "黑": "black",
    "绿": "green",
    "渐变绿": "green",
    "黄绿": "yellow_green",
}
DIRECTIONS: Final[dict[str, Direction]] = {"in": "in", "out": "out"}
TYPES: Final = ("online", "offline", "heartbeat")


def parse(
    push: HttpPush,
    *,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    tz: ZoneInfo = DEFAULT_TZ,
) -> Event:
    """The plate read or heartbeat in an HXZX form post (``tz`` unused: times are epoch)."""
    fields = form_fields(push)
    kind = require_str(fields, "type", "")
    if kind not in TYPES:
        raise BadPayload(f"must be one of {', '.join(TYPES)}, not {kind!r}", "type")
    serial = require_str(fields, "cam_id", "")
    if kind == "heartbeat":
        return Heartbeat(vendor=VENDOR, serial=serial)
    raw_plate = fields.get("plate_num", "").strip()
    plate_val = fields.get("plate_val", "true").strip().lower()
    if plate_val not in ("true", "false", "1", "0"):
        raise BadPayload("must be true or false", "plate_val")
    plate = choose_plate(raw_plate) if plate_val in ("true", "1") else None
    read_at = epoch_seconds(optional_int(fields, "start_time", ""), "start_time")
    images: list[Image] = []
    for key, name in (("picture", "full.jpg"), ("closeup_pic", "plate.jpg")):
        if fields.get(key):
            data = decode_base64(fields[key], key, max_image_bytes, hxzx=True)
            images.append(Image(name=name, content_type="image/jpeg", data=data))
    color = fields.get("plate_color", "").strip().removesuffix("色")
    return PlateRead(
        vendor=VENDOR,
        serial=serial,
        plate=plate,
        raw_plate=raw_plate,
        color=COLORS.get(color),
        confidence=None,
        read_at=read_at,
        read_id=derive_read_id(serial, read_at, raw_plate),
        offline=kind == "offline",
        direction=DIRECTIONS.get(fields.get("vdc_type", "").strip().lower()),
        images=tuple(images),
    )


_OK: Final[dict[str, Any]] = {"error_num": 0, "error_str": "noerror"}


def plate_reply(*, open: bool, io: str = "io1") -> Reply:
    """The reply to a read: with ``gpio_data`` ``io1`` on it opens, without it stays shut."""
    if open:
        return json_reply({**_OK, "gpio_data": [{"ionum": io, "action": "on"}]})
    return json_reply(dict(_OK))


def heartbeat_reply() -> Reply:
    """The reply to a heartbeat."""
    return json_reply(dict(_OK))


def reply(event: Event, *, open: bool = False) -> Reply:
    """The reply to any parsed event (a backlog read never opens)."""
    if isinstance(event, Heartbeat):
        if open:
            raise ValueError("HXZX heartbeats cannot carry an open")
        return heartbeat_reply()
    if open and event.offline:
        raise ValueError("a backlog record is past: it cannot open the barrier")
    return plate_reply(open=open)
