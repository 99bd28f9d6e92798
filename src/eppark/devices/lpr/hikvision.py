"""Hikvision ISAPI ANPR alarm push: multipart plate reads, heartbeats and the reply.

The camera posts multipart/form-data: a part ``anpr.xml`` (text/xml or
application/xml) holding ``<EventNotificationAlert version="2.0"
xmlns="http://www.isapi.org/ver20/XMLSchema">`` with ``ipAddress``,
``macAddress``, ``channelID``, ``dateTime`` (ISO 8601, usually with its UTC
offset), ``eventType`` ANPR, ``isDataRetransmission`` (true for re-sent
backlog) and ``<ANPR>`` ``licensePlate`` (``unknown`` or ``无车牌`` when none
was read), ``direction`` (forward | reverse), ``confidenceLevel``,
``plateColor`` (blue, yellow, white, black, green…), ``vehicleType``; then
JPEG parts such as ``licensePlatePicture.jpg`` and ``detectionPicture.jpg``.
An alert without pictures may come as a bare XML body. Older firmware uses
the ``http://www.std-cgi.com/ver20/XMLSchema`` namespace (any namespace is
read alike), may send neither ``deviceID`` nor ``macAddress``, and sends its
pictures as ``application/octet-stream`` parts. The serial is the
``macAddress`` (or a version 1.0 alert's ``Extensions/serialNumber``);
``deviceID`` is a number the installer sets, not a serial, so it names
nothing here: the URL key names the camera, and an alert without either is
still read (its serial is empty). A ``videoloss`` alert with ``eventState``
inactive is the camera's periodic heartbeat. No read id is sent: it is
derived from the serial, ``dateTime`` and the plate.
Reply: HTTP 200 with an empty body. The barrier opens through the camera's
API (``barrier.async_open_barrier``), not through the reply.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

from eppark.devices.lpr.events import (
    CHINESE_CHARSETS,
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_TZ,
    BadPayload,
    Color,
    Direction,
    Event,
    Heartbeat,
    HttpPush,
    Image,
    Part,
    PlateRead,
    Reply,
    charset,
    check_image_size,
    choose_plate,
    confidence_value,
    decode_text,
    derive_read_id,
    media_type,
    multipart_parts,
)

VENDOR: Final = "hikvision"
OPENS_BY_REPLY: Final = False
"""The reply only acknowledges; opening is ``PUT /ISAPI/Parking/channels/1/barrierGate``."""

XML_TYPES: Final = ("text/xml", "application/xml")
COLORS: Final[dict[str, Color]] = {
    "blue": "blue",
    "yellow": "yellow",
    "white": "white",
    "black": "black",
    "green": "green",
    "newenergygreen": "green",
    "yellowgreen": "yellow_green",
}
DIRECTIONS: Final[dict[str, Direction]] = {"forward": "forward", "reverse": "reverse"}


def parse(
    push: HttpPush,
    *,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    tz: ZoneInfo = DEFAULT_TZ,
) -> Event:
    """The plate read or heartbeat in a Hikvision alarm push (``tz`` for offset-less times)."""
    kind = media_type(push.content_type)
    pictures: list[Part]
    if kind in XML_TYPES:
        xml, pictures = push.body, []
    elif kind.startswith("multipart/"):
        xml, pictures = _split(multipart_parts(push))
    else:
        raise BadPayload(f"expected multipart/form-data or XML, got {push.content_type}")
    root = _parse_xml(xml, charset(push.content_type) if kind in XML_TYPES else None)
    serial = _serial(root)
    event_type = (_text(root, "eventType") or "").strip()
    if event_type.lower() == "videoloss" and (_text(root, "eventState") or "") == "inactive":
        return Heartbeat(vendor=VENDOR, serial=serial, ipaddr=_text(root, "ipAddress"))
    anpr = _child(root, "ANPR")
    if event_type != "ANPR" or anpr is None:
        raise BadPayload(
            f"not an ANPR EventNotificationAlert (eventType {event_type or 'missing'})"
        )
    raw_plate = _text(anpr, "licensePlate")
    if raw_plate is None:
        raise BadPayload("is required", "ANPR.licensePlate")
    read_at = _date_time(_text(root, "dateTime"), tz)
    images = tuple(
        Image(
            name=part.filename or part.name,
            content_type=part.content_type
            if part.content_type.startswith("image/")
            else "image/jpeg",
            data=check_image_size(part.data, part.filename or part.name, max_image_bytes),
        )
        for part in pictures
    )
    color = (_text(anpr, "plateColor") or "").lower()
    retransmission = (_text(root, "isDataRetransmission") or "false").lower()
    if retransmission not in ("true", "false"):
        raise BadPayload("must be true or false", "isDataRetransmission")
    return PlateRead(
        vendor=VENDOR,
        serial=serial,
        plate=choose_plate(raw_plate),
        raw_plate=raw_plate,
        color=COLORS.get(color),
        confidence=_confidence(_text(anpr, "confidenceLevel")),
        read_at=read_at,
        read_id=derive_read_id(serial, read_at, raw_plate),
        offline=retransmission == "true",
        direction=DIRECTIONS.get((_text(anpr, "direction") or "").lower()),
        images=images,
    )


def _serial(root: ElementTree.Element) -> str:
    """The camera's own serial: its MAC address, else a 1.0 alert's serialNumber, else ""."""
    mac = _text(root, "macAddress")
    if mac:
        return mac
    extensions = _child(root, "Extensions")
    if extensions is not None:
        return _text(extensions, "serialNumber") or ""
    return ""


PICTURE_TYPES: Final = ("application/octet-stream",)
"""Non-image content types older firmware gives its JPEG parts."""


def _is_picture(part: Part) -> bool:
    return bool(part.data) and (
        part.content_type.startswith("image/") or part.content_type in PICTURE_TYPES
    )


def _split(parts: list[Part]) -> tuple[bytes, list[Part]]:
    xml_parts = [
        part
        for part in parts
        if part.content_type in XML_TYPES or part.name.lower().endswith(".xml")
    ]
    if not xml_parts:
        raise BadPayload("multipart body has no XML part (anpr.xml)")
    if len(xml_parts) > 1:
        raise BadPayload("multipart body has more than one XML part")
    pictures = [part for part in parts if part not in xml_parts and _is_picture(part)]
    return xml_parts[0].data, pictures


_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_-]+)["']""")


def _parse_xml(xml: bytes, transport_charset: str | None = None) -> ElementTree.Element:
    if re.search(rb"<!(DOCTYPE|ENTITY)", xml, re.IGNORECASE):
        raise BadPayload("XML with a DOCTYPE or entities is refused")
    # the XML parser knows no multi-byte Chinese codec: GB2312/GBK text is handed over as UTF-8
    declared = _DECLARED.match(xml)
    if declared is not None and declared.group(1).decode().lower() in CHINESE_CHARSETS:
        text = decode_text(xml[declared.end() :], "gb18030", "XML")
        xml = b'<?xml version="1.0" encoding="UTF-8"' + text.encode("utf-8")
    elif declared is None and not _is_utf8(xml):
        xml = decode_text(xml, transport_charset, "XML").encode("utf-8")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise BadPayload(f"XML is malformed: {exc}") from None
    if _local(root.tag) != "EventNotificationAlert":
        raise BadPayload(f"not an EventNotificationAlert (root {_local(root.tag)})")
    return root


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(parent: ElementTree.Element, name: str) -> ElementTree.Element | None:
    for child in parent:
        if _local(child.tag) == name:
            return child
    return None


def _text(parent: ElementTree.Element, name: str) -> str | None:
    child = _child(parent, name)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _date_time(text: str | None, tz: ZoneInfo) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadPayload(f"is not an ISO 8601 time: {text!r}", "dateTime") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _confidence(text: str | None) -> int | None:
    if text is None:
        return None
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise BadPayload("must be an integer", "ANPR.confidenceLevel")
    return confidence_value(int(text), "ANPR.confidenceLevel")


def reply(event: Event, *, open: bool = False) -> Reply:
    """HTTP 200 with an empty body: the camera only needs the acknowledgement."""
    if open:
        raise ValueError("Hikvision opens through the camera API, not through the reply")
    return Reply(200, "text/plain; charset=utf-8", b"")
