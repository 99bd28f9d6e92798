"""EP君's MQTT protocol (docs/robot-protocol.md): topics, access rules, typed messages; no I/O."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final, Self, TypeVar
from urllib.parse import unquote, urlsplit

from eppark.domain import fields as f
from eppark.domain.errors import BadInput

PREFIX: Final = "ep/robots"
GATEWAY_USER: Final = "gateway"
KINDS: Final = ("status", "events", "commands", "acks")
ROBOT_PUBLISHES: Final = ("status", "events", "acks")
ROBOT_SUBSCRIBES: Final = ("commands",)
ONLINE: Final = "online"
OFFLINE: Final = "offline"
QOS: Final = 1
DEFAULT_EMBEDDED_PORT: Final = 11883

LIGHTS: Final = ("green", "yellow", "red")
FACES: Final = ("smile",)
DISPLAY_KINDS: Final = ("face", "qr", "text", "vehicles")
ACK_STATUSES: Final = ("accepted", "done", "failed", "expired")
PHOTO_TYPES: Final = ("image/jpeg", "image/png")

MAX_TTL_MS: Final = 3_600_000
MAX_VOICE: Final = 500
MAX_TEXT: Final = 500
MAX_QR: Final = 1024
MAX_URL: Final = 1024
MAX_DETAIL: Final = 500
MAX_VEHICLES: Final = 20
MAX_ID_PHOTOS: Final = 4
MAX_RESEND_ACKS: Final = 50
MAX_PHOTO_BYTES: Final = 256 * 1024
MAX_SCANNED: Final = 256

T = TypeVar("T")

_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ROBOT_CODE_RULE: Final = (
    "its MQTT user name and topic level: 1 to 64 ASCII letters, digits, '.', '_' or '-', "
    "starting with a letter or digit, and not 'gateway'"
)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


# --- topics and access -------------------------------------------------------------------------


def is_robot_code(code: str) -> bool:
    """Whether ``code`` can name a robot on the wire (and is not the gateway's user name)."""
    return bool(_CODE.fullmatch(code)) and code != GATEWAY_USER


def topic(code: str, kind: str) -> str:
    """The topic of one robot's ``kind`` (status, events, commands or acks)."""
    if not is_robot_code(code):
        raise BadInput("code", f"{code!r} is not a robot code ({ROBOT_CODE_RULE})")
    if kind not in KINDS:
        raise BadInput("kind", f"must be one of {', '.join(KINDS)}")
    return f"{PREFIX}/{code}/{kind}"


def parse_topic(name: str) -> tuple[str, str]:
    """The robot code and kind of a robot topic: ``ep/robots/EP-0001/acks`` → (EP-0001, acks)."""
    parts = name.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != PREFIX:
        raise BadInput("topic", f"{name!r} is not under {PREFIX}/CODE/KIND")
    code, kind = parts[2], parts[3]
    if not is_robot_code(code):
        raise BadInput("topic", f"{code!r} in {name!r} is not a robot code")
    if kind not in KINDS:
        raise BadInput("topic", f"{kind!r} in {name!r} must be one of {', '.join(KINDS)}")
    return code, kind


def _own_kind(username: str, name: str) -> str | None:
    """The kind of ``name`` when it is one of ``username``'s own robot topics."""
    try:
        code, kind = parse_topic(name)
    except BadInput:
        return None
    return kind if code == username else None


def _under_ep(name: str) -> bool:
    """Whether a topic or filter lies under ``ep/`` (its first level is literally ``ep``)."""
    return name.split("/", 1)[0] == "ep" and "/" in name


def may_publish(username: str | None, name: str) -> bool:
    """The ACL: the gateway publishes under ``ep/``; a robot only to its status, events and acks."""
    if not username:
        return False
    if username == GATEWAY_USER:
        return _under_ep(name)
    return _own_kind(username, name) in ROBOT_PUBLISHES


def may_subscribe(username: str | None, topic_filter: str) -> bool:
    """The ACL: the gateway subscribes under ``ep/``; a robot only to its own commands."""
    if not username:
        return False
    if username == GATEWAY_USER:
        return _under_ep(topic_filter)
    return _own_kind(username, topic_filter) in ROBOT_SUBSCRIBES


def may_receive(username: str | None, name: str) -> bool:
    """The ACL for delivery: what a client may be sent (same rule as subscribing, per topic)."""
    return may_subscribe(username, name)


@dataclass(frozen=True)
class MqttAddress:
    """Where a broker listens, from an ``mqtt://`` or ``mqtts://`` URL."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None


def parse_mqtt_url(url: str) -> MqttAddress:
    """``mqtt://[user:pass@]host[:port]`` (1883) or ``mqtts://…`` (8883, TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise BadInput("MQTT_URL", f"{url!r} must start with mqtt:// or mqtts://")
    try:
        port = parts.port
    except ValueError:
        raise BadInput("MQTT_URL", f"{url!r} has a bad port") from None
    if not parts.hostname:
        raise BadInput("MQTT_URL", f"{url!r} has no host")
    tls = parts.scheme == "mqtts"
    return MqttAddress(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def default_mqtt_url(environ: Mapping[str, str]) -> str:
    """``MQTT_URL``, else the embedded broker on 127.0.0.1:``EPPARK_MQTT_PORT`` (11883)."""
    if environ.get("MQTT_URL"):
        return environ["MQTT_URL"]
    port = environ.get("EPPARK_MQTT_PORT") or str(DEFAULT_EMBEDDED_PORT)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput("EPPARK_MQTT_PORT", f"{port!r} is not a TCP port")
    return f"mqtt://127.0.0.1:{int(port)}"


def send_at_once(client: Any) -> None:
    """Turn Nagle's algorithm off on a connected aiomqtt client's socket.

    paho-mqtt leaves it on, so a small packet written while the one before is
    unacknowledged waits for the peer's delayed ACK: up to 40 ms per command,
    ack or PUBACK. Every MQTT peer of ours (the gateway, the simulated robots,
    Mosquitto with ``set_tcp_nodelay``) sends at once; robot firmware should too.
    """
    sock = client._client.socket()  # aiomqtt's paho client; None until connected
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # not TCP (a unix or web socket)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def parse_status(payload: bytes | str) -> str:
    """The plain-text status payload: ``online`` or ``offline``."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    if text not in (ONLINE, OFFLINE):
        raise BadInput("status", f"{text[:40]!r} must be {ONLINE} or {OFFLINE}")
    return text


# --- field readers -----------------------------------------------------------------------------


def _keys(
    value: Any, path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Mapping[str, Any]:
    """A JSON object with exactly these keys (optional ones may be absent); names a bad one."""
    mapping = f.obj(value, path)
    for key in mapping:
        if key not in required and key not in optional:
            raise BadInput(f.join(path, str(key)), "is not a known field")
    for key in required:
        f.require(mapping, key, path)
    return mapping


def _text(value: Any, path: str, limit: int) -> str:
    """A non-blank string of at most ``limit`` characters."""
    text = f.string(value, path)
    if not text.strip():
        raise BadInput(path, "must not be blank")
    if len(text) > limit:
        raise BadInput(path, f"must be at most {limit} characters")
    return text


def _optional(mapping: Mapping[str, Any], key: str) -> Any:
    """The value of an optional key (absent and null are the same)."""
    return mapping.get(key)


def _nullable(
    mapping: Mapping[str, Any], key: str, path: str, read: Callable[[Any, str], T]
) -> T | None:
    """An optional or nullable field read with ``read``."""
    value = mapping.get(key)
    return None if value is None else read(value, f.join(path, key))


def _ident(value: Any, path: str) -> str:
    """A message id: 1–64 of letters, digits, '-', '_', '.', ':'."""
    text = f.string(value, path)
    if not _ID.fullmatch(text):
        raise BadInput(path, "must be 1–64 letters, digits, '-', '_', '.' or ':'")
    return text


def _choice(value: Any, path: str, choices: tuple[str, ...]) -> str:
    """One of a fixed set of strings."""
    text = f.string(value, path)
    if text not in choices:
        raise BadInput(path, f"must be one of {', '.join(choices)}")
    return text


def _voice(value: Any, path: str) -> str:
    """A voice text, said word for word."""
    return _text(value, path, MAX_VOICE)


def _caption(value: Any, path: str) -> str:
    """A text shown on the screen (or logged)."""
    return _text(value, path, MAX_TEXT)


def _light(value: Any, path: str) -> str:
    """The light's colour."""
    return _choice(value, path, LIGHTS)


def _url(value: Any, path: str) -> str:
    """An http(s) URL."""
    text = _text(value, path, MAX_URL)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadInput(path, "must be an http:// or https:// URL")
    return text


def _time(value: datetime) -> str:
    """A time on the wire: ISO 8601 with its offset, to the millisecond."""
    return value.isoformat(timespec="milliseconds")


def _load(payload: bytes | str) -> Any:
    """The JSON value of a UTF-8 payload."""
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput("payload", "is not UTF-8") from None
    try:
        return json.loads(payload)
    except ValueError as error:
        raise BadInput("payload", f"is not JSON ({error})") from None


def _dump(value: Mapping[str, Any]) -> str:
    """Compact UTF-8 JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _Message:
    """Shared JSON plumbing: ``to_json`` checks the message the way a receiver would."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this message."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, value: Any) -> Self:
        """Read and validate a JSON object."""
        raise NotImplementedError

    @classmethod
    def from_json(cls, payload: bytes | str) -> Self:
        """Read and validate a payload; raises ``BadInput`` naming the bad field."""
        return cls.from_dict(_load(payload))

    def to_json(self) -> str:
        """The payload; refuses (``BadInput``) to write what a receiver would refuse to read."""
        value = self.to_dict()
        type(self).from_dict(value)
        return _dump(value)


# --- what a robot shows ------------------------------------------------------------------------


@dataclass(frozen=True)
class Vehicle(_Message):
    """A car listed on the screen (a shared-space group's cars inside)."""

    plate: str
    photo_url: str | None = None
    entered_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this vehicle."""
        return {
            "plate": self.plate,
            "photo_url": self.photo_url,
            "entered_at": _time(self.entered_at) if self.entered_at else None,
        }

    @classmethod
    def from_dict(cls, value: Any, path: str = "vehicle") -> Self:
        """Read a vehicle."""
        v = _keys(value, path, ("plate",), ("photo_url", "entered_at"))
        return cls(
            plate=_text(v["plate"], f.join(path, "plate"), 16),
            photo_url=_nullable(v, "photo_url", path, _url),
            entered_at=_nullable(v, "entered_at", path, f.timestamp),
        )


@dataclass(frozen=True)
class Display(_Message):
    """The screen: a face, a QR code to scan, a text, or a list of vehicles (``text`` captions)."""

    kind: str
    face: str | None = None
    qr: str | None = None
    text: str | None = None
    vehicles: tuple[Vehicle, ...] = ()

    _FIELDS: ClassVar[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
        "face": (("kind", "face"), ("text",)),
        "qr": (("kind", "qr"), ("text",)),
        "text": (("kind", "text"), ()),
        "vehicles": (("kind", "vehicles"), ("text",)),
    }

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this display."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "face":
            out["face"] = self.face
        elif self.kind == "qr":
            out["qr"] = self.qr
        elif self.kind == "vehicles":
            out["vehicles"] = [vehicle.to_dict() for vehicle in self.vehicles]
        if self.text is not None:
            out["text"] = self.text
        return out

    @classmethod
    def from_dict(cls, value: Any, path: str = "display") -> Self:
        """Read a display."""
        raw_kind = f.require(f.obj(value, path), "kind", path)
        kind = _choice(raw_kind, f.join(path, "kind"), DISPLAY_KINDS)
        required, optional = cls._FIELDS[kind]
        d = _keys(value, path, required, optional)
        caption = _optional(d, "text")
        text = None if caption is None else _text(caption, f.join(path, "text"), MAX_TEXT)
        if kind == "face":
            return cls(kind, face=_choice(d["face"], f.join(path, "face"), FACES), text=text)
        if kind == "qr":
            return cls(kind, qr=_text(d["qr"], f.join(path, "qr"), MAX_QR), text=text)
        if kind == "text":
            return cls(kind, text=text)
        raw = d["vehicles"]
        if not isinstance(raw, list):
            raise BadInput(f.join(path, "vehicles"), "must be a list")
        if len(raw) > MAX_VEHICLES:
            raise BadInput(f.join(path, "vehicles"), f"must list at most {MAX_VEHICLES} vehicles")
        listed = f.join(path, "vehicles")
        vehicles = tuple(Vehicle.from_dict(item, f.join(listed, i)) for i, item in enumerate(raw))
        return cls(kind, text=text, vehicles=vehicles)


@dataclass(frozen=True)
class Screen(_Message):
    """What a robot presents now: last voice, display and light; since when, by which command."""

    voice: str | None = None
    display: Display | None = None
    light: str | None = None
    since: datetime | None = None
    cmd_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this screen."""
        return {
            "voice": self.voice,
            "display": self.display.to_dict() if self.display else None,
            "light": self.light,
            "since": _time(self.since) if self.since else None,
            "cmd_id": self.cmd_id,
        }

    @classmethod
    def from_dict(cls, value: Any, path: str = "screen") -> Self:
        """Read a screen."""
        s = _keys(value, path, ("voice", "display", "light", "since", "cmd_id"))
        return cls(
            voice=_nullable(s, "voice", path, _voice),
            display=_nullable(s, "display", path, Display.from_dict),
            light=_nullable(s, "light", path, _light),
            since=_nullable(s, "since", path, f.timestamp),
            cmd_id=_nullable(s, "cmd_id", path, _ident),
        )


# --- commands (server → robot) -----------------------------------------------------------------


@dataclass(frozen=True)
class Present(_Message):
    """Say a voice text (word for word), show a display and set the light."""

    CMD: ClassVar[str] = "present"
    display: Display
    light: str
    voice: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The args object."""
        out: dict[str, Any] = {"display": self.display.to_dict(), "light": self.light}
        if self.voice is not None:
            out["voice"] = self.voice
        return out

    @classmethod
    def from_dict(cls, value: Any, path: str = "args") -> Self:
        """Read present's args."""
        a = _keys(value, path, ("display", "light"), ("voice",))
        voice = _optional(a, "voice")
        return cls(
            display=Display.from_dict(a["display"], f.join(path, "display")),
            light=_choice(a["light"], f.join(path, "light"), LIGHTS),
            voice=None if voice is None else _text(voice, f.join(path, "voice"), MAX_VOICE),
        )


@dataclass(frozen=True)
class Open(_Message):
    """Pulse the barrier relay once (``reason`` is for the robot's log)."""

    CMD: ClassVar[str] = "open"
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The args object."""
        return {} if self.reason is None else {"reason": self.reason}

    @classmethod
    def from_dict(cls, value: Any, path: str = "args") -> Self:
        """Read open's args."""
        a = _keys(value, path, (), ("reason",))
        return cls(reason=_nullable(a, "reason", path, _caption))


@dataclass(frozen=True)
class CaptureId(_Message):
    """Take ``count`` photos (1–4) with the ID camera; each comes back as an ``id_photo`` event."""

    CMD: ClassVar[str] = "capture_id"
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        """The args object."""
        return {"count": self.count}

    @classmethod
    def from_dict(cls, value: Any, path: str = "args") -> Self:
        """Read capture_id's args."""
        a = _keys(value, path, (), ("count",))
        raw = _optional(a, "count")
        count = 1 if raw is None else f.integer(raw, f.join(path, "count"), minimum=1)
        if count > MAX_ID_PHOTOS:
            raise BadInput(f.join(path, "count"), f"must be ≤ {MAX_ID_PHOTOS}")
        return cls(count=count)


@dataclass(frozen=True)
class ResendAcks(_Message):
    """Publish again the last ack sent for each of these commands; ids not remembered are skipped.

    The gateway asks this about commands whose final ack it never got (lost with a
    broker that went down): it never makes the robot do anything.
    """

    CMD: ClassVar[str] = "resend_acks"
    cmd_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The args object."""
        return {"cmd_ids": list(self.cmd_ids)}

    @classmethod
    def from_dict(cls, value: Any, path: str = "args") -> Self:
        """Read resend_acks's args."""
        a = _keys(value, path, ("cmd_ids",), ())
        listed = f.join(path, "cmd_ids")
        raw = a["cmd_ids"]
        if not isinstance(raw, list) or not raw:
            raise BadInput(listed, "must be a non-empty list")
        if len(raw) > MAX_RESEND_ACKS:
            raise BadInput(listed, f"must list at most {MAX_RESEND_ACKS} ids")
        return cls(tuple(_ident(item, f.join(listed, i)) for i, item in enumerate(raw)))


CommandArgs = Present | Open | CaptureId | ResendAcks
_COMMANDS: Final[dict[str, type[Present] | type[Open] | type[CaptureId] | type[ResendAcks]]] = {
    kind.CMD: kind for kind in (Present, Open, CaptureId, ResendAcks)
}
COMMANDS: Final = tuple(_COMMANDS)


@dataclass(frozen=True)
class Command(_Message):
    """A command to one robot, valid until ``ts + ttl_ms`` (then never run)."""

    cmd_id: str
    ts: datetime
    ttl_ms: int
    args: CommandArgs

    @property
    def cmd(self) -> str:
        """The command's name: present, open or capture_id."""
        return self.args.CMD

    @property
    def expires_at(self) -> datetime:
        """The last moment the command may start."""
        return self.ts + timedelta(milliseconds=self.ttl_ms)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this command."""
        return {
            "cmd_id": self.cmd_id,
            "cmd": self.cmd,
            "ts": _time(self.ts),
            "ttl_ms": self.ttl_ms,
            "args": self.args.to_dict(),
        }

    @classmethod
    def from_dict(cls, value: Any, path: str = "") -> Self:
        """Read a command."""
        c = _keys(value, path, ("cmd_id", "cmd", "ts", "ttl_ms", "args"))
        cmd_id = _ident(c["cmd_id"], f.join(path, "cmd_id"))
        name = _choice(c["cmd"], f.join(path, "cmd"), COMMANDS)
        ts = f.timestamp(c["ts"], f.join(path, "ts"))
        ttl_ms = f.integer(c["ttl_ms"], f.join(path, "ttl_ms"), minimum=1)
        if ttl_ms > MAX_TTL_MS:
            raise BadInput(f.join(path, "ttl_ms"), f"must be ≤ {MAX_TTL_MS}")
        args = _COMMANDS[name].from_dict(c["args"], f.join(path, "args"))
        return cls(cmd_id=cmd_id, ts=ts, ttl_ms=ttl_ms, args=args)


def is_expired(command: Command, now: datetime) -> bool:
    """Whether ``now`` (the robot's clock, with an offset) is past the command's time-to-live."""
    return now > command.expires_at


def peek_cmd_id(payload: bytes | str) -> str | None:
    """The well-formed ``cmd_id`` of a payload that may be bad otherwise (to ack it ``failed``)."""
    try:
        value = _load(payload)
    except BadInput:
        return None
    if not isinstance(value, Mapping):
        return None
    try:
        return _ident(value.get("cmd_id"), "cmd_id")
    except BadInput:
        return None


# --- acks (robot → server) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Ack(_Message):
    """A robot's answer to a command: accepted, then done or failed; or expired (never run)."""

    cmd_id: str
    status: str
    ts: datetime
    detail: str | None = None
    screen: Screen | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this ack."""
        out: dict[str, Any] = {"cmd_id": self.cmd_id, "status": self.status, "ts": _time(self.ts)}
        if self.detail is not None:
            out["detail"] = self.detail
        if self.screen is not None:
            out["screen"] = self.screen.to_dict()
        return out

    @classmethod
    def from_dict(cls, value: Any, path: str = "") -> Self:
        """Read an ack."""
        a = _keys(value, path, ("cmd_id", "status", "ts"), ("detail", "screen"))
        detail, screen = _optional(a, "detail"), _optional(a, "screen")
        return cls(
            cmd_id=_ident(a["cmd_id"], f.join(path, "cmd_id")),
            status=_choice(a["status"], f.join(path, "status"), ACK_STATUSES),
            ts=f.timestamp(a["ts"], f.join(path, "ts")),
            detail=None if detail is None else _text(detail, f.join(path, "detail"), MAX_DETAIL),
            screen=None if screen is None else Screen.from_dict(screen, f.join(path, "screen")),
        )


# --- events (robot → server) -------------------------------------------------------------------


@dataclass(frozen=True)
class CallButton(_Message):
    """The driver pressed the call button (the robot dials the call centre itself)."""

    TYPE: ClassVar[str] = "call_button"

    def to_dict(self) -> dict[str, Any]:
        """The data object."""
        return {}

    @classmethod
    def from_dict(cls, value: Any, path: str = "data") -> Self:
        """Read call_button's data."""
        _keys(value, path, ())
        return cls()


@dataclass(frozen=True)
class Loop(_Message):
    """The vehicle detector (ground loop) now senses a vehicle, or no longer does."""

    TYPE: ClassVar[str] = "loop"
    present: bool

    def to_dict(self) -> dict[str, Any]:
        """The data object."""
        return {"present": self.present}

    @classmethod
    def from_dict(cls, value: Any, path: str = "data") -> Self:
        """Read loop's data."""
        d = _keys(value, path, ("present",))
        return cls(present=f.boolean(d["present"], f.join(path, "present")))


@dataclass(frozen=True)
class IdPhoto(_Message):
    """A photo from the ID camera: inline (``photo`` bytes, ≤ 256 KiB) or by ``url``."""

    TYPE: ClassVar[str] = "id_photo"
    photo: bytes | None = None
    content_type: str | None = None
    url: str | None = None
    cmd_id: str | None = None
    index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The data object."""
        out: dict[str, Any] = {}
        if self.cmd_id is not None:
            out["cmd_id"] = self.cmd_id
        if self.index is not None:
            out["index"] = self.index
        if self.photo is not None:
            out["base64"] = base64.b64encode(self.photo).decode("ascii")
        if self.content_type is not None:
            out["content_type"] = self.content_type
        if self.url is not None:
            out["url"] = self.url
        return out

    @classmethod
    def from_dict(cls, value: Any, path: str = "data") -> Self:
        """Read id_photo's data."""
        d = _keys(value, path, (), ("cmd_id", "index", "base64", "content_type", "url"))
        cmd_id, index = _optional(d, "cmd_id"), _optional(d, "index")
        encoded, content_type, url = (_optional(d, k) for k in ("base64", "content_type", "url"))
        if (encoded is None) == (url is None):
            raise BadInput(f.join(path, "base64"), "exactly one of base64 and url is required")
        photo = None
        if encoded is not None:
            field = f.join(path, "base64")
            text = f.string(encoded, field)
            if len(text) > (MAX_PHOTO_BYTES + 2) // 3 * 4:
                raise BadInput(field, f"the photo must be at most {MAX_PHOTO_BYTES} bytes")
            try:
                photo = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise BadInput(field, "is not base64") from None
            if not photo:
                raise BadInput(field, "must not be empty")
            if content_type is None:
                raise BadInput(f.join(path, "content_type"), "is required with base64")
        return cls(
            photo=photo,
            content_type=None
            if content_type is None
            else _choice(content_type, f.join(path, "content_type"), PHOTO_TYPES),
            url=None if url is None else _url(url, f.join(path, "url")),
            cmd_id=None if cmd_id is None else _ident(cmd_id, f.join(path, "cmd_id")),
            index=None if index is None else f.integer(index, f.join(path, "index"), minimum=1),
        )


@dataclass(frozen=True)
class _AboutCommand(_Message):
    """An event whose data names only the ``present`` it is about: ``{"cmd_id"}``."""

    cmd_id: str

    def to_dict(self) -> dict[str, Any]:
        """The data object."""
        return {"cmd_id": self.cmd_id}

    @classmethod
    def from_dict(cls, value: Any, path: str = "data") -> Self:
        """Read the event's data."""
        d = _keys(value, path, ("cmd_id",))
        return cls(cmd_id=_ident(d["cmd_id"], f.join(path, "cmd_id")))


@dataclass(frozen=True)
class ScreenShown(_AboutCommand):
    """The robot now shows what ``cmd_id`` asked for."""

    TYPE: ClassVar[str] = "screen_shown"


@dataclass(frozen=True)
class VoicePlayed(_AboutCommand):
    """The robot finished saying the voice text of ``cmd_id``."""

    TYPE: ClassVar[str] = "voice_played"


@dataclass(frozen=True)
class QrScanned(_Message):
    """The robot's scanner read a code the driver showed (a WeChat/Alipay payment code)."""

    TYPE: ClassVar[str] = "qr_scanned"
    code: str

    def to_dict(self) -> dict[str, Any]:
        """The data object."""
        return {"code": self.code}

    @classmethod
    def from_dict(cls, value: Any, path: str = "data") -> Self:
        """Read qr_scanned's data."""
        d = _keys(value, path, ("code",))
        return cls(code=_text(d["code"], f.join(path, "code"), MAX_SCANNED))


EventData = CallButton | Loop | IdPhoto | ScreenShown | VoicePlayed | QrScanned
_EVENTS: Final[dict[str, type[EventData]]] = {
    kind.TYPE: kind for kind in (CallButton, Loop, IdPhoto, ScreenShown, VoicePlayed, QrScanned)
}
EVENT_TYPES: Final = tuple(_EVENTS)


@dataclass(frozen=True)
class Event(_Message):
    """Something that happened at a robot; ``event_id`` lets the server drop redeliveries."""

    event_id: str
    ts: datetime
    data: EventData

    @property
    def type(self) -> str:
        """The event's type: call_button, loop, id_photo, screen_shown, voice_played, qr_scanned."""
        return self.data.TYPE

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this event."""
        return {
            "event_id": self.event_id,
            "ts": _time(self.ts),
            "type": self.type,
            "data": self.data.to_dict(),
        }

    @classmethod
    def from_dict(cls, value: Any, path: str = "") -> Self:
        """Read an event."""
        e = _keys(value, path, ("event_id", "ts", "type", "data"))
        event_id = _ident(e["event_id"], f.join(path, "event_id"))
        ts = f.timestamp(e["ts"], f.join(path, "ts"))
        kind = _choice(e["type"], f.join(path, "type"), EVENT_TYPES)
        data = _EVENTS[kind].from_dict(e["data"], f.join(path, "data"))
        return cls(event_id=event_id, ts=ts, data=data)
