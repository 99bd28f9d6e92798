"""Typed events and shared parsing helpers for licence-plate camera pushes.

A camera's HTTP push arrives as an ``HttpPush`` (content type, raw body, query
string, and the sub-path after the camera's URL, which only Dahua uses:
``NotificationInfo/TollgateInfo`` or ``NotificationInfo/KeepAlive``). Each
vendor module turns it into a ``PlateRead`` or a ``Heartbeat``, or raises
``BadPayload``. Readings shared by all vendors:

- ``plate`` is normalised with ``eppark.domain.plates.normalize`` and is None
  when the camera read no plate (``NO_PLATE_MARKERS``: Vzenith ``_无_``, an
  empty string, ``无牌车``, ``无车牌``, ``unknown``…). It is kept even when it is
  not a valid GA 36 plate: a misread is still a read.
- Cross-border cars carry three plates joined by ``|`` (mainland, Hong Kong,
  Macau, e.g. ``粤ZJ068澳|MX7742|ZM127``): the first part that is a valid
  mainland plate is the plate; with none valid, the first part is.
- ``color`` is one of ``COLORS`` or None (unknown or a vendor value not listed).
- ``direction`` is the vendor's hint only: ``in``/``out`` (HXZX ``vdc_type``),
  ``forward``/``reverse`` relative to the configured lane (Hikvision
  ``direction``, Dahua ``Direction`` Obverse/Reverse), ``left``/``right``/
  ``up``/``down`` (Vzenith ``direction`` 1-4). The gate's direction comes
  from its configuration, never from this hint.
- Images are decoded; one larger than ``max_image_bytes`` is refused.
- Text bodies are UTF-8 unless the camera says otherwise: the cameras' GB2312/GBK
  encoding option is read from the Content-Type charset, and a body that is not
  valid UTF-8 and declares no charset is read as GB18030 (a superset of GB2312
  and GBK), which every such camera's Chinese text decodes under.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.parser
import email.policy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Any, Final, Literal
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from eppark.domain.errors import BadInput
from eppark.domain.plates import check, normalize

Vendor = Literal["vzenith", "hxzx", "hikvision", "dahua"]
VENDORS: Final[tuple[Vendor, ...]] = ("vzenith", "hxzx", "hikvision", "dahua")

Color = Literal["blue", "yellow", "white", "black", "green", "yellow_green"]
COLORS: Final[tuple[Color, ...]] = ("blue", "yellow", "white", "black", "green", "yellow_green")

Direction = Literal["in", "out", "forward", "reverse", "left", "right", "up", "down"]

DEFAULT_MAX_IMAGE_BYTES: Final = 4 * 1024 * 1024
"""Largest decoded image accepted (Vzenith documents pictures up to 5 MB, typically ~300 kB)."""

DEFAULT_TZ: Final = ZoneInfo("Asia/Shanghai")
"""Time zone of camera-local timestamps that carry no offset (Dahua ``AccurateTime``)."""

MAX_FORM_FIELDS: Final = 200

NO_PLATE_MARKERS: Final = frozenset(
    {"", "_无_", "无", "无牌", "无牌车", "无车牌", "未识别", "车牌", "UNKNOWN", "NONE", "NOPLATE"}
)
"""Normalised ``license`` texts meaning "no plate read" (compared after ``normalize``)."""


CHINESE_CHARSETS: Final = frozenset({"gb2312", "gbk", "gb18030", "cp936", "ms936", "euc-cn"})
"""Charset labels of the cameras' Chinese encoding option, all read as GB18030 (a superset)."""


class BadPayload(BadInput):
    """A camera push that cannot be read: malformed, incomplete or of the wrong shape."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(field, message)


@dataclass(frozen=True)
class HttpPush:
    """One HTTP request from a camera: content type, raw body, query and sub-path."""

    content_type: str
    body: bytes = field(repr=False)
    query: Mapping[str, str] = field(default_factory=dict)
    path: str = ""


@dataclass(frozen=True)
class Image:
    """A decoded picture sent with a read (full scene or plate close-up)."""

    name: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class PlateRead:
    """One plate read (or a vehicle with no plate read) reported by a camera."""

    vendor: Vendor
    serial: str
    plate: str | None
    raw_plate: str
    color: Color | None
    confidence: int | None
    read_at: datetime | None
    read_id: str
    offline: bool = False
    direction: Direction | None = None
    images: tuple[Image, ...] = ()


@dataclass(frozen=True)
class Heartbeat:
    """A camera's keep-alive (Vzenith registration, HXZX heartbeat, Dahua KeepAlive…).

    ``serial`` is empty when the message names none (the URL key names the camera).
    ``variant`` tells the vendor's messages apart where the reply differs: Vzenith
    ``"json"`` (a ``{"heartbeat": …}`` body, answered with ``Response_Heartbeat``),
    Dahua ``"registration"`` (``NotificationInfo/DeviceInfo``); empty otherwise.
    """

    vendor: Vendor
    serial: str
    ipaddr: str | None = None
    device_name: str | None = None
    variant: str = ""
    model: str | None = None


Event = PlateRead | Heartbeat


@dataclass(frozen=True)
class Reply:
    """The HTTP response to send back to the camera."""

    status: int
    content_type: str
    body: bytes


JSON_CONTENT_TYPE: Final = "application/json; charset=utf-8"


def json_reply(obj: Any, status: int = 200) -> Reply:
    """A compact UTF-8 JSON reply (``{"a":1}``, Chinese kept as is)."""
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Reply(status, JSON_CONTENT_TYPE, body)


def choose_plate(raw: str) -> str | None:
    """The normalised plate in a camera's ``license`` text, or None when no plate was read."""
    parts = [normalize(part) for part in raw.split("|")] if "|" in raw else [normalize(raw)]
    parts = [part for part in parts if part not in NO_PLATE_MARKERS]
    if not parts:
        return None
    for part in parts:
        if check(part)["valid"]:
            return part
    return parts[0]


def media_type(content_type: str) -> str:
    """The lower-cased media type of a Content-Type header, without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def is_json(push: HttpPush) -> bool:
    """Whether the push declares JSON or its body looks like a JSON object."""
    kind = media_type(push.content_type)
    if kind in ("application/json", "text/json") or kind.endswith("+json"):
        return True
    return push.body.lstrip()[:1] == b"{"


def charset(content_type: str) -> str | None:
    """The codec named by a Content-Type's ``charset`` parameter (None: not given).

    GB2312, GBK and their aliases map to ``gb18030``; an unknown charset is refused.
    """
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset":
            continue
        label = value.strip().strip("\"'").lower()
        if not label:
            return None
        if label in CHINESE_CHARSETS:
            return "gb18030"
        try:
            return codecs.lookup(label).name
        except LookupError:
            raise BadPayload(f"unknown charset {label!r} in the content type") from None
    return None


def decode_text(data: bytes, declared: str | None, what: str = "body") -> str:
    """Bytes as text: in the declared charset, else UTF-8, else GB18030 (GBK/GB2312)."""
    if declared is not None:
        try:
            return data.decode("utf-8-sig" if declared == "utf-8" else declared)
        except UnicodeDecodeError as exc:
            raise BadPayload(f"{what} is not valid {declared} (byte {exc.start})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        first_error = exc.start
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise BadPayload(f"{what} is neither UTF-8 nor GBK (byte {first_error})") from None


def json_object(push: HttpPush) -> dict[str, Any]:
    """The push body as a JSON object (UTF-8, or the GB2312/GBK the camera declares or uses)."""
    text = decode_text(push.body, charset(push.content_type))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadPayload(f"body is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(value, dict):
        raise BadPayload("body must be a JSON object")
    return value


@dataclass(frozen=True)
class Part:
    """One part of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str
    data: bytes = field(repr=False)


def multipart_parts(push: HttpPush) -> list[Part]:
    """The parts of a multipart/form-data (or multipart/mixed) body, in order."""
    if not media_type(push.content_type).startswith("multipart/"):
        raise BadPayload(f"expected a multipart body, got {push.content_type or 'no content type'}")
    if "\r" in push.content_type or "\n" in push.content_type:
        raise BadPayload("content type must be a single header line")
    head = f"Content-Type: {push.content_type}\r\nMIME-Version: 1.0\r\n\r\n"
    raw = head.encode("latin-1", "replace") + push.body
    # compat32: the modern header registry costs milliseconds per part for nothing here
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
    if message.defects or not message.is_multipart():
        reasons = ", ".join(type(defect).__name__ for defect in message.defects) or "no parts"
        raise BadPayload(f"malformed multipart body ({reasons})")
    parts: list[Part] = []
    for sub in message.get_payload():
        if not isinstance(sub, Message) or sub.is_multipart():
            raise BadPayload("nested multipart bodies are not supported")
        if sub.defects:
            reasons = ", ".join(type(defect).__name__ for defect in sub.defects)
            raise BadPayload(f"malformed multipart part ({reasons})")
        name = sub.get_param("name", header="content-disposition")
        filename = sub.get_filename()
        payload = sub.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        parts.append(
            Part(
                name=name if isinstance(name, str) else (filename or ""),
                filename=filename,
                content_type=sub.get_content_type(),
                data=data,
            )
        )
    return parts


def form_fields(push: HttpPush) -> dict[str, str]:
    """The text fields of a urlencoded or multipart/form-data body.

    Values may be percent-encoded or raw (some firmware posts raw UTF-8 or GBK
    bytes in a urlencoded form); they are read in the declared charset, else as
    UTF-8, else as GB18030.
    """
    kind = media_type(push.content_type)
    declared = charset(push.content_type)
    if kind.startswith("multipart/"):
        pairs: list[tuple[str, str]] = []
        for part in multipart_parts(push):
            pairs.append((part.name, decode_text(part.data, declared, f"field {part.name!r}")))
    elif kind in ("application/x-www-form-urlencoded", "text/plain", ""):
        pairs = _urlencoded_pairs(push.body, declared)
    else:
        raise BadPayload(f"expected a form body, got {push.content_type}")
    if len(pairs) > MAX_FORM_FIELDS:
        raise BadPayload(f"more than {MAX_FORM_FIELDS} form fields")
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields and fields[name] != value:
            raise BadPayload("is given twice with different values", name)
        fields[name] = value
    return fields


def _urlencoded_pairs(body: bytes, declared: str | None) -> list[tuple[str, str]]:
    """Name/value pairs of a urlencoded body whose values are percent-encoded or raw."""
    text = decode_text(body, declared)
    # percent-escapes decode in the declared charset, else UTF-8, else GB18030
    encodings = [declared] if declared is not None else ["utf-8", "gb18030"]
    for encoding in encodings:
        try:
            return parse_qsl(
                text,
                keep_blank_values=True,
                strict_parsing=bool(text),
                encoding=encoding,
                errors="strict",
                max_num_fields=MAX_FORM_FIELDS,
            )
        except UnicodeDecodeError:
            continue
        except ValueError as exc:
            raise BadPayload(f"malformed form body: {exc}") from None
    raise BadPayload("a form field is not percent-encoded UTF-8 or GBK")


_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def decode_base64(text: Any, field: str, max_bytes: int, *, hxzx: bool = False) -> bytes:
    """Standard base64 (or HXZX's variant: ``+``→``-``, ``/``→``_``, ``=``→``.``) to bytes."""
    if not isinstance(text, str):
        raise BadPayload("must be a base64 string", field)
    compact = "".join(text.split())
    if hxzx:
        compact = compact.translate(str.maketrans("-_.", "+/="))
    if len(compact) // 4 * 3 > max_bytes + 3:
        raise BadPayload(f"image is larger than {max_bytes} bytes", field)
    if not _BASE64.fullmatch(compact) or len(compact) % 4:
        raise BadPayload("is not valid base64", field)
    try:
        data = base64.b64decode(compact, validate=True)
    except binascii.Error:
        raise BadPayload("is not valid base64", field) from None
    if len(data) > max_bytes:
        raise BadPayload(f"image is larger than {max_bytes} bytes", field)
    return data


def check_image_size(data: bytes, field: str, max_bytes: int) -> bytes:
    """The image bytes, refused when larger than ``max_bytes``."""
    if len(data) > max_bytes:
        raise BadPayload(f"image is larger than {max_bytes} bytes", field)
    return data


def require_str(mapping: Mapping[str, Any], key: str, where: str) -> str:
    """``mapping[key]`` as a non-empty string (numbers are not accepted)."""
    if key not in mapping:
        raise BadPayload("is required", f"{where}.{key}" if where else key)
    value = mapping[key]
    if not isinstance(value, str) or not value.strip():
        raise BadPayload("must be a non-empty string", f"{where}.{key}" if where else key)
    return value.strip()


def optional_int(mapping: Mapping[str, Any], key: str, where: str) -> int | None:
    """``mapping[key]`` as an int (digit strings accepted), or None when absent or null."""
    value = mapping.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadPayload("must be an integer", f"{where}.{key}" if where else key)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
        return int(value)
    raise BadPayload("must be an integer", f"{where}.{key}" if where else key)


def optional_mapping(mapping: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    """``mapping[key]`` as an object, or an empty one when absent or null."""
    value = mapping.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadPayload("must be an object", f"{where}.{key}" if where else key)
    return value


def confidence_value(value: int | None, field: str) -> int | None:
    """A confidence score that is not negative."""
    if value is not None and value < 0:
        raise BadPayload("must not be negative", field)
    return value


def derive_read_id(serial: str, read_at: datetime | None, raw_plate: str) -> str:
    """A dedup id for vendors that send none: ``serial|UTC time|raw plate``."""
    when = read_at.astimezone(UTC).isoformat() if read_at is not None else ""
    return f"{serial}|{when}|{raw_plate}"


def epoch_seconds(value: int | None, field: str) -> datetime | None:
    """An aware UTC datetime from epoch seconds (None stays None)."""
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise BadPayload("is not a valid epoch time", field) from None
