"""The provisioning file: read from YAML or JSON and validated into a typed plan, or refused.

Pure: no database, no clock. Every refusal is a ``BadInput`` whose field is the
full path of the bad entry (``lots[0].passes[3].plates[0]``). Readings:

- An optional key that is absent or ``null`` leaves an existing object's value
  as it is; a new object gets the model's default.
- Unknown keys are refused by name, so a typo is never silently ignored; a key
  given twice in one mapping is refused too.
- Phones, seats and codes must be strings (quote them in YAML: ``"1001"``), so
  that a leading zero is never lost.
- Plates are stored in their normalised form (``粤b·12345`` → ``粤B12345``).
- A plate listed twice in the same lot (on one pass or two) is refused; the
  same plate may hold passes in different lots.
- ``call_centres`` (top level) are the call-centre integrations: ``provider``
  (generic or tinet), ``key`` (the secret part of ``/cti/<provider>/<key>``; stored
  as its SHA-256 and a hint, like a camera's), ``name``, and optionally
  ``callout_url``, ``secret`` and ``access_key_id``. A TiNet centre that places
  callouts needs its ``access_key_id`` and ``secret`` to sign them.
- Checks that need the database (a user's lot that is not in the file, a pass
  whose plates span two existing passes) are made when the plan is applied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import yaml

from eppark.domain import plates as plate_rules
from eppark.domain.errors import BadInput
from eppark.domain.fields import boolean, integer, join, obj, require, string, timestamp
from eppark.domain.tariff import parse_rule
from eppark.gateway.protocol import ROBOT_CODE_RULE, is_robot_code

ROLES = ("agent", "operator", "admin")
DIRECTIONS = ("entry", "exit")
LPR_VENDORS = ("vzenith", "hxzx", "hikvision", "dahua")
EZVIZ = "ezviz"
VENDORS = (*LPR_VENDORS, EZVIZ)

DEFAULT_GRACE_DAYS = 3
DEFAULT_PAYABLE_DAYS = 7
SMALL_INT_MAX = 32767
INT_MAX = 2147483647

# Longest text each column takes (the models' max_length; a test keeps them in step).
MAX_LENGTH = {
    "lot.code": 64,
    "lot.name": 128,
    "lot.emergency_contact_name": 64,
    "lot.emergency_contact_phone": 32,
    "lot.timezone": 64,
    "gate.code": 64,
    "gate.name": 128,
    "robot.code": 64,
    "robot.name": 128,
    "robot.phone": 32,
    "camera.name": 128,
    "camera.serial": 128,
    "camera.ezviz_serial": 64,
    "pass.owner": 64,
    "pass.phone": 32,
    "pass.note": 256,
    "plate.plate": 16,
    "user.username": 150,
    "user.first_name": 150,
    "profile.name": 64,
    "seat.number": 8,
    "call_centre.name": 64,
    "call_centre.callout_url": 200,
    "call_centre.secret": 256,
    "call_centre.access_key_id": 128,
}

MAX_KEY_LENGTH = 128
"""The longest camera endpoint key (stored as its SHA-256, so no column limits it)."""
_LIMITS = {**MAX_LENGTH, "camera.key": MAX_KEY_LENGTH, "call_centre.key": MAX_KEY_LENGTH}

_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
_DEVICE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_URL_KEY = re.compile(r"[A-Za-z0-9._~-]+")
_PHONE = re.compile(r"\+?[0-9][0-9 -]*")
_USERNAME = re.compile(r"[\w.@+-]+")
_SEAT = re.compile(r"[0-9A-Za-z-]+")

_TOP_KEYS = ("lots", "users", "call_centres")
CTI_PROVIDERS = ("generic", "tinet")
_CALL_CENTRE_KEYS = ("provider", "key", "name", "callout_url", "secret", "access_key_id")
_LOT_KEYS = (
    "code",
    "name",
    "temp_entry_confirmation",
    "capacity",
    "location",
    "emergency_contact",
    "tariff",
    "expired_grace_days",
    "expired_payable_days",
    "monthly_price",
    "renewal_offers",
    "timezone",
    "gates",
    "passes",
)
_GATE_KEYS = ("code", "name", "direction", "robot", "cameras")
_ROBOT_KEYS = ("code", "name", "phone")
_CAMERA_KEYS = ("vendor", "key", "serial", "name")
_PASS_KEYS = ("plates", "owner", "phone", "valid_from", "valid_until", "spaces", "note")
_USER_KEYS = ("username", "name", "role", "lots", "seat")


@dataclass(frozen=True)
class Location:
    """Where a lot is, in degrees (WGS 84), to six decimal places."""

    lat: Decimal
    lng: Decimal


@dataclass(frozen=True)
class RobotPlan:
    """The EP君 robot at a gate; identified by its factory code."""

    path: str
    code: str
    name: str
    phone: str | None


@dataclass(frozen=True)
class CameraPlan:
    """A camera at a gate: a plate camera by its key, an Ezviz camera by its serial."""

    path: str
    vendor: str
    key: str | None
    serial: str | None
    name: str | None

    @property
    def is_plate_camera(self) -> bool:
        """Whether this camera reads plates."""
        return self.vendor != EZVIZ


@dataclass(frozen=True)
class GatePlan:
    """A lane of the lot; identified by its code within the lot."""

    path: str
    code: str
    name: str
    direction: str
    robot: RobotPlan | None
    cameras: tuple[CameraPlan, ...]


@dataclass(frozen=True)
class PassPlan:
    """A monthly pass; identified by its (normalised) plates within the lot."""

    path: str
    plates: tuple[str, ...]
    owner: str
    phone: str | None
    valid_from: datetime
    valid_until: datetime
    spaces: int | None
    note: str | None


@dataclass(frozen=True)
class LotPlan:
    """A lot with its gates and passes; identified by its code."""

    path: str
    code: str
    name: str
    temp_entry_confirmation: bool | None
    capacity: int | None
    location: Location | None
    emergency_contact_name: str | None
    emergency_contact_phone: str | None
    tariff: dict[str, Any] | None
    expired_grace_days: int | None
    expired_payable_days: int | None
    timezone: str | None
    gates: tuple[GatePlan, ...]
    passes: tuple[PassPlan, ...]
    monthly_price: int | None = None
    renewal_offers: tuple[tuple[int, int], ...] | None = None


@dataclass(frozen=True)
class UserPlan:
    """A staff account; identified by its username. ``lots`` are lot codes."""

    path: str
    username: str
    name: str | None
    role: str
    lots: tuple[tuple[str, str], ...] | None
    seat: str | None


@dataclass(frozen=True)
class CallCentrePlan:
    """A call-centre integration; identified by its endpoint key."""

    path: str
    provider: str
    key: str
    name: str
    callout_url: str | None
    secret: str | None
    access_key_id: str | None


@dataclass(frozen=True)
class Plan:
    """Everything a provisioning file asks for, validated."""

    lots: tuple[LotPlan, ...]
    users: tuple[UserPlan, ...]
    call_centres: tuple[CallCentrePlan, ...] = ()


# --- reading text --------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML that keeps times as text and refuses a key given twice."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    """A mapping whose keys are all different (merged ``<<`` keys may be overridden)."""
    seen: set[Any] = set()
    for key_node, _value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark
            )
        seen.add(key)
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node, deep=True))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} is given twice")
        result[key] = value
    return result


def read_document(text: str, name: str, fmt: str | None = None) -> Any:
    """The parsed YAML or JSON (``fmt`` "yaml"/"json", None sniffs); BadInput gives the line."""
    if fmt is None:
        fmt = "json" if text.lstrip("\ufeff \t\r\n").startswith(("{", "[")) else "yaml"
    text = text.removeprefix("\ufeff")
    if fmt == "json":
        try:
            return json.loads(text, object_pairs_hook=_json_object)
        except json.JSONDecodeError as exc:
            raise BadInput(name, f"line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        except ValueError as exc:
            raise BadInput(name, f"bad JSON: {exc}") from None
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = exc.problem or str(exc)
        if exc.context:
            reason = f"{reason} ({exc.context})"
        raise BadInput(name, f"{where}{reason}") from None
    except yaml.YAMLError as exc:
        raise BadInput(name, f"bad YAML: {exc}") from None


# --- small readers -------------------------------------------------------------------------


def _known(data: Mapping[str, Any], keys: tuple[str, ...], path: str) -> None:
    """Refuse keys the format does not define, by name."""
    for key in data:
        if key not in keys:
            raise BadInput(join(path, str(key)), f"is not a known key (known: {', '.join(keys)})")


def _given(data: Mapping[str, Any], key: str) -> bool:
    """Whether an optional key is present and not null."""
    return data.get(key) is not None


def _items(value: Any, path: str) -> list[Any]:
    """A list; absent or null is the empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadInput(path, "must be a list")
    return value


def _text(value: Any, path: str, limit: str, *, required: bool = True) -> str:
    """A string of at most the column's length; a required one may not be blank."""
    if isinstance(value, bool | int | float):
        raise BadInput(path, f'must be a string (quote it: "{value}")')
    text = string(value, path)
    if required and not text.strip():
        raise BadInput(path, "must not be empty")
    longest = _LIMITS[limit]
    if len(text) > longest:
        raise BadInput(path, f"is {len(text)} characters long; at most {longest} fit")
    return text


def _pattern(value: Any, path: str, limit: str, pattern: re.Pattern[str], what: str) -> str:
    """A non-empty string matching ``pattern``."""
    text = _text(value, path, limit)
    if not pattern.fullmatch(text):
        raise BadInput(path, f"{text!r} is not {what}")
    return text


def _code(data: Mapping[str, Any], path: str, limit: str) -> str:
    """The required ``code`` of a lot or gate: letters, digits, - and _."""
    value = require(data, "code", path)
    return _pattern(value, join(path, "code"), limit, _SLUG, "a code (letters, digits, - and _)")


def _phone(value: Any, path: str, limit: str) -> str:
    """A phone number as text: digits, an optional leading +, spaces or dashes; may be empty."""
    text = _text(value, path, limit, required=False)
    if text and not _PHONE.fullmatch(text):
        raise BadInput(path, f"{text!r} is not a phone number")
    return text


def _optional(data: Mapping[str, Any], key: str, path: str, read: Callable[[Any, str], Any]) -> Any:
    """``read`` the key's value, or None when it is absent or null."""
    return read(data[key], join(path, key)) if _given(data, key) else None


def _days(value: Any, path: str) -> int:
    """A whole number of days, 0 or more."""
    days = integer(value, path, minimum=0)
    if days > SMALL_INT_MAX:
        raise BadInput(path, f"must be at most {SMALL_INT_MAX}")
    return days


def _degrees(value: Any, path: str, bound: int) -> Decimal:
    """A number of degrees in [-bound, bound], kept to six decimal places."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(path, "must be a number of degrees")
    if not -bound <= value <= bound:
        raise BadInput(path, f"{value} is out of range (-{bound} to {bound})")
    return Decimal(str(value)).quantize(Decimal("0.000001"))


class _Registry:
    """Where each natural key was first seen in the file, to refuse duplicates."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, ...], str] = {}

    def claim(self, key: tuple[str, ...], path: str, what: str) -> None:
        """Record ``key`` at ``path``, or refuse it if an earlier entry used it."""
        earlier = self._seen.get(key)
        if earlier is not None:
            raise BadInput(path, f"{what} is already used by {earlier}")
        self._seen[key] = path


# --- the document --------------------------------------------------------------------------


def parse_plan(document: Any) -> Plan:
    """A validated plan from a parsed provisioning document; BadInput names the first bad entry."""
    if document is None:
        raise BadInput("", "the file is empty: it needs lots, users and/or call_centres")
    if not isinstance(document, Mapping):
        raise BadInput(
            "", "the file must hold a mapping with the keys lots, users and/or call_centres"
        )
    _known(document, _TOP_KEYS, "")
    registry = _Registry()
    lots = tuple(
        _lot(item, f"lots[{k}]", registry)
        for k, item in enumerate(_items(document.get("lots"), "lots"))
    )
    users = tuple(
        _user(item, f"users[{k}]", registry)
        for k, item in enumerate(_items(document.get("users"), "users"))
    )
    centres = tuple(
        _call_centre(item, f"call_centres[{k}]", registry)
        for k, item in enumerate(_items(document.get("call_centres"), "call_centres"))
    )
    return Plan(lots, users, centres)


def _url(value: Any, path: str) -> str:
    """An http(s) URL of at most the column's length."""
    text = _text(value, path, "call_centre.callout_url")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise BadInput(path, f"{text!r} is not a URL") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in text)
    ):
        raise BadInput(path, f"{text!r} is not an http:// or https:// URL")
    return text


def _call_centre(value: Any, path: str, registry: _Registry) -> CallCentrePlan:
    data = obj(value, path)
    _known(data, _CALL_CENTRE_KEYS, path)
    provider = require(data, "provider", path)
    if provider not in CTI_PROVIDERS or not isinstance(provider, str):
        raise BadInput(join(path, "provider"), f"must be one of {', '.join(CTI_PROVIDERS)}")
    key = _pattern(
        require(data, "key", path),
        join(path, "key"),
        "call_centre.key",
        _URL_KEY,
        "a key for a URL (letters, digits, . _ ~ -)",
    )
    registry.claim(("cti-key", key), join(path, "key"), f"call-centre key {key!r}")
    name = _text(require(data, "name", path), join(path, "name"), "call_centre.name")
    callout_url = _optional(data, "callout_url", path, _url)
    secret = _optional(
        data, "secret", path, lambda v, p: _text(v, p, "call_centre.secret", required=False)
    )
    access_key_id = _optional(
        data,
        "access_key_id",
        path,
        lambda v, p: _text(v, p, "call_centre.access_key_id", required=False),
    )
    if provider == "tinet" and callout_url:
        for needed, given in (("access_key_id", access_key_id), ("secret", secret)):
            if not given:
                raise BadInput(
                    join(path, needed), "TiNet callouts are signed: give access_key_id and secret"
                )
    return CallCentrePlan(path, provider, key, name, callout_url, secret, access_key_id)


def _lot(value: Any, path: str, registry: _Registry) -> LotPlan:
    data = obj(value, path)
    _known(data, _LOT_KEYS, path)
    code = _code(data, path, "lot.code")
    registry.claim(("lot", code), join(path, "code"), f"lot code {code!r}")
    name = _text(require(data, "name", path), join(path, "name"), "lot.name")
    confirmation = _optional(data, "temp_entry_confirmation", path, boolean)
    capacity = _optional(data, "capacity", path, _capacity)
    location = _optional(data, "location", path, _location)
    contact_name, contact_phone = _contact(data.get("emergency_contact"), path)
    tariff = _optional(data, "tariff", path, _tariff)
    grace = _optional(data, "expired_grace_days", path, _days)
    payable = _optional(data, "expired_payable_days", path, _days)
    effective_grace = DEFAULT_GRACE_DAYS if grace is None else grace
    effective_payable = DEFAULT_PAYABLE_DAYS if payable is None else payable
    if effective_grace > effective_payable and (grace is not None or payable is not None):
        where = "expired_grace_days" if grace is not None else "expired_payable_days"
        raise BadInput(
            join(path, where),
            f"grace ({effective_grace} days) must not exceed payable ({effective_payable} days)",
        )
    monthly_price = _optional(data, "monthly_price", path, _fen)
    offers = _optional(data, "renewal_offers", path, _renewal_offers)
    zone = _optional(data, "timezone", path, _timezone)
    gates = tuple(
        _gate(item, join(join(path, "gates"), k), code, registry)
        for k, item in enumerate(_items(data.get("gates"), join(path, "gates")))
    )
    passes = tuple(
        _pass(item, join(join(path, "passes"), k), code, registry)
        for k, item in enumerate(_items(data.get("passes"), join(path, "passes")))
    )
    return LotPlan(
        path,
        code,
        name,
        confirmation,
        capacity,
        location,
        contact_name,
        contact_phone,
        tariff,
        grace,
        payable,
        zone,
        gates,
        passes,
        monthly_price,
        offers,
    )


MAX_RENEWAL_MONTHS = 120


def _fen(value: Any, path: str) -> int:
    """An amount of money in fen (分), 0 or more: 30000 is ¥300.00."""
    fen = integer(value, path, minimum=0)
    if fen > INT_MAX:
        raise BadInput(path, f"must be at most {INT_MAX} fen")
    return fen


def _renewal_offers(value: Any, path: str) -> tuple[tuple[int, int], ...]:
    """A lot's renewal options: ``[{months, price}]``, each length once; ``[]`` for the default."""
    seen: set[int] = set()
    offers = []
    for k, item in enumerate(_items(value, path)):
        where = join(path, k)
        data = obj(item, where)
        _known(data, ("months", "price"), where)
        months = integer(require(data, "months", where), join(where, "months"), minimum=1)
        if months > MAX_RENEWAL_MONTHS:
            raise BadInput(join(where, "months"), f"must be at most {MAX_RENEWAL_MONTHS}")
        if months in seen:
            raise BadInput(join(where, "months"), f"{months} months is offered twice")
        seen.add(months)
        price = _fen(require(data, "price", where), join(where, "price"))
        if price == 0:
            raise BadInput(join(where, "price"), "must be more than 0 fen")
        offers.append((months, price))
    return tuple(sorted(offers))


def _capacity(value: Any, path: str) -> int:
    capacity = integer(value, path, minimum=0)
    if capacity > INT_MAX:
        raise BadInput(path, f"must be at most {INT_MAX}")
    return capacity


def _location(value: Any, path: str) -> Location:
    data = obj(value, path)
    _known(data, ("lat", "lng"), path)
    lat = _degrees(require(data, "lat", path), join(path, "lat"), 90)
    lng = _degrees(require(data, "lng", path), join(path, "lng"), 180)
    return Location(lat, lng)


def _contact(value: Any, lot_path: str) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    path = join(lot_path, "emergency_contact")
    data = obj(value, path)
    _known(data, ("name", "phone"), path)
    name = _optional(
        data,
        "name",
        path,
        lambda v, p: _text(v, p, "lot.emergency_contact_name", required=False),
    )
    phone = _optional(data, "phone", path, lambda v, p: _phone(v, p, "lot.emergency_contact_phone"))
    return name, phone


def _tariff(value: Any, path: str) -> dict[str, Any]:
    parse_rule(value, path)
    return json.loads(json.dumps(value))  # type: ignore[no-any-return]


def _timezone(value: Any, path: str) -> str:
    name = _text(value, path, "lot.timezone")
    try:
        ZoneInfo(name)
    except (ValueError, OSError, KeyError):
        raise BadInput(path, f"unknown time zone {name!r} (e.g. Asia/Shanghai)") from None
    return name


def _gate(value: Any, path: str, lot_code: str, registry: _Registry) -> GatePlan:
    data = obj(value, path)
    _known(data, _GATE_KEYS, path)
    code = _code(data, path, "gate.code")
    registry.claim(("gate", lot_code, code), join(path, "code"), f"gate code {code!r}")
    name = _text(require(data, "name", path), join(path, "name"), "gate.name")
    direction = require(data, "direction", path)
    if direction not in DIRECTIONS or not isinstance(direction, str):
        raise BadInput(join(path, "direction"), 'must be "entry" or "exit"')
    robot = _optional(data, "robot", path, lambda v, p: _robot(v, p, registry))
    cameras = tuple(
        _camera(item, join(join(path, "cameras"), k), registry)
        for k, item in enumerate(_items(data.get("cameras"), join(path, "cameras")))
    )
    return GatePlan(path, code, name, direction, robot, cameras)


def _robot(value: Any, path: str, registry: _Registry) -> RobotPlan:
    data = obj(value, path)
    _known(data, _ROBOT_KEYS, path)
    code = _text(require(data, "code", path), join(path, "code"), "robot.code")
    if not is_robot_code(code):
        raise BadInput(join(path, "code"), f"{code!r} is not a robot code ({ROBOT_CODE_RULE})")
    registry.claim(("robot", code), join(path, "code"), f"robot code {code!r}")
    name = _text(require(data, "name", path), join(path, "name"), "robot.name")
    phone = _optional(data, "phone", path, lambda v, p: _phone(v, p, "robot.phone"))
    return RobotPlan(path, code, name, phone)


def _camera(value: Any, path: str, registry: _Registry) -> CameraPlan:
    data = obj(value, path)
    _known(data, _CAMERA_KEYS, path)
    vendor = require(data, "vendor", path)
    if vendor not in VENDORS or not isinstance(vendor, str):
        raise BadInput(join(path, "vendor"), f"must be one of {', '.join(VENDORS)}")
    name = _optional(data, "name", path, lambda v, p: _text(v, p, "camera.name", required=False))
    if vendor == EZVIZ:
        if _given(data, "key"):
            raise BadInput(
                join(path, "key"), "an Ezviz camera does not post to EP Park and has no key"
            )
        serial = _pattern(
            require(data, "serial", path),
            join(path, "serial"),
            "camera.ezviz_serial",
            _DEVICE_CODE,
            "an Ezviz device serial",
        )
        registry.claim(("camera", EZVIZ, serial), join(path, "serial"), f"Ezviz serial {serial!r}")
        return CameraPlan(path, vendor, None, serial, name)
    key = _pattern(
        require(data, "key", path),
        join(path, "key"),
        "camera.key",
        _URL_KEY,
        "a key for a URL (letters, digits, . _ ~ -)",
    )
    registry.claim(("camera-key", key), join(path, "key"), f"camera key {key!r}")
    serial = _optional(data, "serial", path, lambda v, p: _text(v, p, "camera.serial"))
    if serial is not None:
        registry.claim(
            ("camera", vendor, serial), join(path, "serial"), f"{vendor} serial {serial!r}"
        )
    return CameraPlan(path, vendor, key, serial, name)


def _plate(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise BadInput(path, "must be a plate as a string")
    result = plate_rules.check(value)
    if not result["valid"]:
        raise BadInput(path, f"{value} is not a plate")
    plate: str = result["plate"]
    return plate


def _pass(value: Any, path: str, lot_code: str, registry: _Registry) -> PassPlan:
    data = obj(value, path)
    _known(data, _PASS_KEYS, path)
    plates_path = join(path, "plates")
    raw_plates = require(data, "plates", path)
    if not isinstance(raw_plates, list) or not raw_plates:
        raise BadInput(plates_path, "must be a list of at least one plate")
    plates: list[str] = []
    for k, raw in enumerate(raw_plates):
        plate_path = join(plates_path, k)
        plate = _plate(raw, plate_path)
        registry.claim(("plate", lot_code, plate), plate_path, f"plate {plate}")
        plates.append(plate)
    owner = _text(require(data, "owner", path), join(path, "owner"), "pass.owner")
    phone = _optional(data, "phone", path, lambda v, p: _phone(v, p, "pass.phone"))
    valid_from = timestamp(require(data, "valid_from", path), join(path, "valid_from"))
    valid_until = timestamp(require(data, "valid_until", path), join(path, "valid_until"))
    if valid_until < valid_from:
        raise BadInput(
            join(path, "valid_until"),
            f"{data['valid_until']} is before valid_from {data['valid_from']}",
        )
    spaces = _optional(data, "spaces", path, _spaces)
    note = _optional(data, "note", path, lambda v, p: _text(v, p, "pass.note", required=False))
    return PassPlan(path, tuple(plates), owner, phone, valid_from, valid_until, spaces, note)


def _spaces(value: Any, path: str) -> int:
    spaces = integer(value, path, minimum=1)
    if spaces > SMALL_INT_MAX:
        raise BadInput(path, f"must be at most {SMALL_INT_MAX}")
    return spaces


def _user(value: Any, path: str, registry: _Registry) -> UserPlan:
    data = obj(value, path)
    _known(data, _USER_KEYS, path)
    username = _pattern(
        require(data, "username", path),
        join(path, "username"),
        "user.username",
        _USERNAME,
        "a username (letters, digits, @ . + - _)",
    )
    registry.claim(("user", username), join(path, "username"), f"username {username!r}")
    name = _optional(data, "name", path, lambda v, p: _text(v, p, "profile.name", required=False))
    role = require(data, "role", path)
    if role not in ROLES or not isinstance(role, str):
        raise BadInput(join(path, "role"), f'must be "agent", "operator" or "admin", not {role!r}')
    lots: tuple[tuple[str, str], ...] | None = None
    if _given(data, "lots"):
        lots_path = join(path, "lots")
        codes: list[tuple[str, str]] = []
        seen: dict[str, str] = {}
        for k, item in enumerate(_items(data["lots"], lots_path)):
            item_path = join(lots_path, k)
            code = _text(item, item_path, "lot.code")
            if code in seen:
                raise BadInput(item_path, f"lot {code!r} is already listed at {seen[code]}")
            seen[code] = item_path
            codes.append((item_path, code))
        lots = tuple(codes)
    seat = _optional(
        data, "seat", path, lambda v, p: _pattern(v, p, "seat.number", _SEAT, "a seat")
    )
    if seat is not None:
        if role != "agent":
            raise BadInput(join(path, "seat"), f"only an agent has a seat, not an {role}")
        registry.claim(("seat", seat), join(path, "seat"), f"seat {seat!r}")
    return UserPlan(path, username, name, role, lots, seat)
