"""The provisioning file format: what it accepts, and how it names what it refuses (no database)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from eppark.domain.errors import BadInput
from eppark.domain.plates import check
from eppark.domain.tariff import parse_rule
from eppark.provisioning.demo_city import PASS_STATES, demo_city
from eppark.provisioning.schema import Plan, parse_plan, read_document

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "provision-example.yaml"
CHINA = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=CHINA)


def example() -> dict[str, Any]:
    document: dict[str, Any] = read_document(EXAMPLE.read_text(encoding="utf-8"), EXAMPLE.name)
    return document


def good_pass(**changes: Any) -> dict[str, Any]:
    entry = {
        "plates": ["粤B67890"],
        "owner": "赵六",
        "valid_from": "2026-01-01T00:00:00+08:00",
        "valid_until": "2026-12-31T23:59:59+08:00",
    }
    return {**entry, **changes}


def refusal(document: Any) -> str:
    with pytest.raises(BadInput) as caught:
        parse_plan(document)
    return str(caught.value)


# --- the contract's example ----------------------------------------------------------------


def test_example_reads_as_the_contract_says() -> None:
    plan = parse_plan(example())
    (lot,) = plan.lots
    assert (lot.code, lot.name, lot.temp_entry_confirmation, lot.capacity) == (
        "caike",
        "彩科彩悦大厦",
        True,
        300,
    )
    assert lot.location is not None
    assert (lot.location.lat, lot.location.lng) == (Decimal("22.5431"), Decimal("113.9497"))
    assert (lot.emergency_contact_name, lot.emergency_contact_phone) == ("张三", "13000000000")
    assert lot.tariff == {
        "free_minutes": 30,
        "first": {"minutes": 60, "price": 500},
        "unit": {"minutes": 60, "price": 300},
        "cap": {"price": 3000, "per": "24h"},
    }
    (gate,) = lot.gates
    assert (gate.code, gate.name, gate.direction) == ("exit-1", "出口1", "exit")
    assert gate.robot is not None
    assert (gate.robot.code, gate.robot.name, gate.robot.phone) == (
        "EP-0001",
        "彩科出口",
        "14400000001",
    )
    (camera,) = gate.cameras
    assert (camera.vendor, camera.key, camera.serial) == (
        "vzenith",
        "k-caike-exit-1",
        "eff50e18-e3d3862b",
    )
    (monthly,) = lot.passes
    assert monthly.plates == ("粤B12345",)
    assert monthly.valid_from == datetime(2026, 1, 1, tzinfo=CHINA)
    assert monthly.valid_until == datetime(2026, 12, 31, 23, 59, 59, tzinfo=CHINA)
    assert monthly.spaces == 1
    operator, agent = plan.users
    assert (operator.username, operator.role, operator.lots, operator.seat) == (
        "op-caike",
        "operator",
        (("users[0].lots[0]", "caike"),),
        None,
    )
    assert (agent.username, agent.role, agent.seat) == ("kf-001", "agent", "1001")


def test_plates_are_stored_normalised() -> None:
    document = example()
    document["lots"][0]["passes"][0]["plates"] = ["粤b·12345", "粤Ｂ６７８９０"]
    assert parse_plan(document).lots[0].passes[0].plates == ("粤B12345", "粤B67890")


def test_absent_or_null_optional_keys_are_none() -> None:
    plan = parse_plan({"lots": [{"code": "x", "name": "X", "capacity": None, "gates": None}]})
    lot = plan.lots[0]
    assert (lot.capacity, lot.location, lot.tariff) == (None, None, None)
    assert (lot.gates, lot.passes) == ((), ())


def test_only_users() -> None:
    plan = parse_plan({"users": [{"username": "ops", "role": "admin"}]})
    assert plan == Plan((), plan.users)
    assert plan.users[0].lots is None


# --- refusals ------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """Set a dotted path (``lots.0.gates.0.direction``) in the document."""

    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return mutate


def _append(path: str, value: Any) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        node: Any = document
        for part in path.split("."):
            node = node[int(part)] if part.isdigit() else node[part]
        node.append(copy.deepcopy(value))

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return mutate


LOT = "lots.0"
GATE = "lots.0.gates.0"
PASS = "lots.0.passes.0"
REFUSALS: list[tuple[str, Mutation, str]] = [
    (
        "bad plate",
        _append("lots.0.passes", good_pass(plates=["粤B1234"])),
        "lots[0].passes[1].plates[0]: 粤B1234 is not a plate",
    ),
    (
        "plate not a string",
        _set(f"{PASS}.plates", [12345]),
        "lots[0].passes[0].plates[0]: must be a plate as a string",
    ),
    (
        "no plates",
        _set(f"{PASS}.plates", []),
        "lots[0].passes[0].plates: must be a list of at least one plate",
    ),
    (
        "direction",
        _set(f"{GATE}.direction", "in"),
        'lots[0].gates[0].direction: must be "entry" or "exit"',
    ),
    (
        "role",
        _set("users.1.role", "boss"),
        'users[1].role: must be "agent", "operator" or "admin", not \'boss\'',
    ),
    (
        "duplicate lot code",
        _append("lots", {"code": "caike", "name": "again"}),
        "lots[1].code: lot code 'caike' is already used by lots[0].code",
    ),
    (
        "duplicate gate code",
        _append("lots.0.gates", {"code": "exit-1", "name": "x", "direction": "exit"}),
        "lots[0].gates[1].code: gate code 'exit-1' is already used by lots[0].gates[0].code",
    ),
    (
        "duplicate robot code",
        _append(
            "lots.0.gates",
            {
                "code": "exit-2",
                "name": "x",
                "direction": "exit",
                "robot": {"code": "EP-0001", "name": "r"},
            },
        ),
        "lots[0].gates[1].robot.code: robot code 'EP-0001' is already used by "
        "lots[0].gates[0].robot.code",
    ),
    (
        "camera key twice",
        _append(f"{GATE}.cameras", {"vendor": "hxzx", "key": "k-caike-exit-1"}),
        "lots[0].gates[0].cameras[1].key: camera key 'k-caike-exit-1' is already used by "
        "lots[0].gates[0].cameras[0].key",
    ),
    (
        "camera vendor",
        _set(f"{GATE}.cameras.0.vendor", "sony"),
        "lots[0].gates[0].cameras[0].vendor: must be one of vzenith, hxzx, hikvision, dahua, ezviz",
    ),
    (
        "plate camera without key",
        _drop(f"{GATE}.cameras.0.key"),
        "lots[0].gates[0].cameras[0].key: is required",
    ),
    (
        "ezviz with a key",
        _append(f"{GATE}.cameras", {"vendor": "ezviz", "serial": "D1", "key": "k"}),
        "lots[0].gates[0].cameras[1].key: an Ezviz camera does not post to EP Park and has no key",
    ),
    (
        "typo in a gate",
        _append("lots.0.gates", {"code": "entry-1", "name": "入口1", "direciton": "entry"}),
        "lots[0].gates[1].direciton: is not a known key (known: code, name, direction, robot, "
        "cameras)",
    ),
    (
        "typo at the top",
        _set("user", []),
        "user: is not a known key (known: lots, users, call_centres)",
    ),
    (
        "typo in a pass",
        _set(f"{PASS}.space", 2),
        "lots[0].passes[0].space: is not a known key (known: plates, owner, phone, valid_from, "
        "valid_until, spaces, note)",
    ),
    (
        "time without offset",
        _set(f"{PASS}.valid_from", "2026-01-01T00:00:00"),
        "lots[0].passes[0].valid_from: '2026-01-01T00:00:00' has no UTC offset (e.g. +08:00)",
    ),
    (
        "time that is no time",
        _set(f"{PASS}.valid_until", "2026-02-30T00:00:00+08:00"),
        "lots[0].passes[0].valid_until: '2026-02-30T00:00:00+08:00' is not a valid ISO 8601 time",
    ),
    (
        "until before from",
        _set(f"{PASS}.valid_until", "2025-12-31T23:59:59+08:00"),
        "lots[0].passes[0].valid_until: 2025-12-31T23:59:59+08:00 is before valid_from "
        "2026-01-01T00:00:00+08:00",
    ),
    ("spaces 0", _set(f"{PASS}.spaces", 0), "lots[0].passes[0].spaces: must be ≥ 1"),
    (
        "spaces float",
        _set(f"{PASS}.spaces", 1.5),
        "lots[0].passes[0].spaces: must be a whole number",
    ),
    ("capacity < 0", _set(f"{LOT}.capacity", -1), "lots[0].capacity: must be ≥ 0"),
    (
        "lat out of range",
        _set(f"{LOT}.location", {"lat": 91, "lng": 113.9}),
        "lots[0].location.lat: 91 is out of range (-90 to 90)",
    ),
    (
        "lng out of range",
        _set(f"{LOT}.location", {"lat": 22.5, "lng": -180.5}),
        "lots[0].location.lng: -180.5 is out of range (-180 to 180)",
    ),
    (
        "lat missing",
        _set(f"{LOT}.location", {"lng": 113.9}),
        "lots[0].location.lat: is required",
    ),
    (
        "plate on two passes of the lot",
        _append("lots.0.passes", good_pass(plates=["粤B67890", "粤b12345"])),
        "lots[0].passes[1].plates[1]: plate 粤B12345 is already used by "
        "lots[0].passes[0].plates[0]",
    ),
    (
        "plate twice on one pass",
        _set(f"{PASS}.plates", ["粤B12345", "粤B12345"]),
        "lots[0].passes[0].plates[1]: plate 粤B12345 is already used by "
        "lots[0].passes[0].plates[0]",
    ),
    (
        "grace > payable",
        _set(f"{LOT}.expired_grace_days", 8),
        "lots[0].expired_grace_days: grace (8 days) must not exceed payable (7 days)",
    ),
    (
        "payable < default grace",
        _set(f"{LOT}.expired_payable_days", 2),
        "lots[0].expired_payable_days: grace (3 days) must not exceed payable (2 days)",
    ),
    (
        "bad tariff",
        _set(f"{LOT}.tariff.unit.minutes", 0),
        "lots[0].tariff.unit.minutes: must be a positive number of minutes, not 0",
    ),
    (
        "bad time zone",
        _set(f"{LOT}.timezone", "Mars/Olympus"),
        "lots[0].timezone: unknown time zone 'Mars/Olympus' (e.g. Asia/Shanghai)",
    ),
    (
        "lot code",
        _set(f"{LOT}.code", "彩科"),
        "lots[0].code: '彩科' is not a code (letters, digits, - and _)",
    ),
    ("lot without name", _drop(f"{LOT}.name"), "lots[0].name: is required"),
    ("blank name", _set(f"{LOT}.name", "  "), "lots[0].name: must not be empty"),
    (
        "name too long",
        _set(f"{GATE}.name", "门" * 129),
        "lots[0].gates[0].name: is 129 characters long; at most 128 fit",
    ),
    (
        "unquoted phone",
        _set(f"{GATE}.robot.phone", 14400000001),
        'lots[0].gates[0].robot.phone: must be a string (quote it: "14400000001")',
    ),
    (
        "not a phone",
        _set(f"{PASS}.phone", "call me"),
        "lots[0].passes[0].phone: 'call me' is not a phone number",
    ),
    (
        "boolean as text",
        _set(f"{LOT}.temp_entry_confirmation", "yes"),
        "lots[0].temp_entry_confirmation: must be true or false",
    ),
    (
        "seat for an operator",
        _set("users.0.seat", "1002"),
        "users[0].seat: only an agent has a seat, not an operator",
    ),
    (
        "seat twice",
        _append("users", {"username": "kf-002", "role": "agent", "seat": "1001"}),
        "users[2].seat: seat '1001' is already used by users[1].seat",
    ),
    (
        "unquoted seat",
        _set("users.1.seat", 1001),
        'users[1].seat: must be a string (quote it: "1001")',
    ),
    (
        "username twice",
        _append("users", {"username": "kf-001", "role": "agent"}),
        "users[2].username: username 'kf-001' is already used by users[1].username",
    ),
    (
        "lot listed twice for a user",
        _set("users.0.lots", ["caike", "caike"]),
        "users[0].lots[1]: lot 'caike' is already listed at users[0].lots[0]",
    ),
    ("user without role", _drop("users.0.role"), "users[0].role: is required"),
    ("lots not a list", _set("lots", {"code": "x"}), "lots: must be a list"),
    ("lot not a mapping", _set("lots", ["caike"]), "lots[0]: must be a JSON object"),
]


@pytest.mark.parametrize(
    ("mutate", "message"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS]
)
def test_refusals_name_the_entry(mutate: Mutation, message: str) -> None:
    document = example()
    mutate(document)
    assert refusal(document) == message


def test_ezviz_serial_twice() -> None:
    document = example()
    cameras = document["lots"][0]["gates"][0]["cameras"]
    cameras += [
        {"vendor": "ezviz", "serial": "D12345678"},
        {"vendor": "ezviz", "serial": "D12345678"},
    ]
    assert refusal(document) == (
        "lots[0].gates[0].cameras[2].serial: Ezviz serial 'D12345678' is already used by "
        "lots[0].gates[0].cameras[1].serial"
    )


def test_same_plate_in_two_lots_is_fine() -> None:
    document = example()
    document["lots"].append(
        {"code": "other", "name": "Other", "passes": [good_pass(plates=["粤B12345"])]}
    )
    assert len(parse_plan(document).lots) == 2


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (None, "the file is empty: it needs lots, users and/or call_centres"),
        ([], "the file must hold a mapping with the keys lots, users and/or call_centres"),
        ("lots", "the file must hold a mapping with the keys lots, users and/or call_centres"),
    ],
)
def test_the_file_must_be_a_mapping(document: Any, message: str) -> None:
    assert refusal(document) == message


# --- reading text --------------------------------------------------------------------------


def test_yaml_error_names_the_line() -> None:
    with pytest.raises(BadInput) as caught:
        read_document("lots:\n  - code: x\n   name: y\n", "city.yaml")
    assert str(caught.value).startswith("city.yaml: line 3, column 4: ")


def test_yaml_key_given_twice_is_refused() -> None:
    with pytest.raises(BadInput) as caught:
        read_document("lots:\n  - code: x\n    code: y\n", "city.yaml")
    assert str(caught.value) == "city.yaml: line 3, column 5: key 'code' is given twice"


def test_yaml_merge_keys_may_be_overridden() -> None:
    text = "base: &b {vendor: hxzx, key: a}\ncam: {<<: *b, key: b}\n"
    assert read_document(text, "x.yaml")["cam"] == {"vendor": "hxzx", "key": "b"}


def test_yaml_times_stay_text() -> None:
    document = read_document("t: 2026-01-01T00:00:00+08:00\nd: 2026-01-01\n", "x.yaml")
    assert document == {"t": "2026-01-01T00:00:00+08:00", "d": "2026-01-01"}


def test_json_error_names_the_line() -> None:
    with pytest.raises(BadInput) as caught:
        read_document('{"lots": [\n  {"code": "x",}\n]}', "city.json", "json")
    assert str(caught.value) == (
        "city.json: line 2, column 16: Expecting property name enclosed in double quotes"
    )


def test_json_key_given_twice_is_refused() -> None:
    with pytest.raises(BadInput) as caught:
        read_document('{"lots": [], "lots": []}', "city.json")
    assert str(caught.value) == "city.json: bad JSON: key 'lots' is given twice"


def test_json_and_yaml_read_the_same() -> None:
    document = example()
    assert read_document(json.dumps(document, ensure_ascii=False), "x") == document
    assert read_document(json.dumps(document), "x.json", "json") == document


# --- the demo city -------------------------------------------------------------------------

NOWS = [
    NOW,
    datetime(2026, 1, 1, 0, 0, tzinfo=CHINA),
    datetime(2027, 6, 30, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 2, 28, 16, 0, tzinfo=CHINA),
]


def _state(entry: dict[str, Any], now: datetime) -> str:
    start = datetime.fromisoformat(entry["valid_from"])
    until = datetime.fromisoformat(entry["valid_until"])
    if start > now:
        return "not_started"
    expired = now - until
    if expired <= timedelta(0):
        return "valid"
    if expired <= timedelta(days=3):
        return "expired_grace"
    if expired <= timedelta(days=7):
        return "expired_payable"
    return "lapsed"


@pytest.mark.parametrize("now", NOWS)
def test_demo_city_is_valid_and_covers_every_pass_state(now: datetime) -> None:
    document = demo_city(now)
    plan = parse_plan(document)
    assert len(plan.lots) >= 5
    passes = [p for lot in document["lots"] for p in lot["passes"]]
    assert 200 <= len(passes) <= 600
    for lot in document["lots"]:
        states = {_state(p, now) for p in lot["passes"]}
        assert states == set(PASS_STATES), lot["code"]
        assert any(len(p["plates"]) > p["spaces"] for p in lot["passes"]), lot["code"]
        directions = {g["direction"] for g in lot["gates"]}
        assert directions == {"entry", "exit"}
        parse_rule(lot["tariff"])
        for gate in lot["gates"]:
            assert "ezviz" in [c["vendor"] for c in gate["cameras"]]
            assert gate["robot"]
    every = {c["vendor"] for lot in document["lots"] for g in lot["gates"] for c in g["cameras"]}
    assert every == {"vzenith", "hxzx", "hikvision", "dahua", "ezviz"}
    for entry in passes:
        for plate in entry["plates"]:
            assert check(plate) == {"valid": True, "plate": plate, "kind": check(plate)["kind"]}
    roles = [u.role for u in plan.users]
    assert roles.count("admin") == 1
    assert roles.count("operator") >= 2
    assert roles.count("agent") >= 2
    assert all(u.seat for u in plan.users if u.role == "agent")


def test_caike_is_where_the_issue_says() -> None:
    caike = demo_city(NOW)["lots"][0]
    assert (caike["name"], caike["location"]) == ("彩科彩悦大厦", {"lat": 22.5431, "lng": 113.9497})


def test_demo_city_is_deterministic() -> None:
    assert demo_city(NOW, seed=7) == demo_city(NOW, seed=7)
    assert demo_city(NOW, seed=7) != demo_city(NOW, seed=8)


def test_demo_city_things_depend_on_the_seed_not_on_now() -> None:
    def shape(document: dict[str, Any]) -> Any:
        for lot in document["lots"]:
            for entry in lot["passes"]:
                del entry["valid_from"], entry["valid_until"]
        return document

    later = NOW + timedelta(days=40, hours=5, minutes=3)
    assert shape(demo_city(NOW)) == shape(demo_city(later))


def test_demo_city_needs_an_offset() -> None:
    with pytest.raises(ValueError, match="offset"):
        demo_city(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "code", ["出口 1", "EP 0001", "EP/0001", "EP+1", "EP#1", "EP\x000", "gateway", "-EP", "é-1"]
)
def test_a_robot_code_that_cannot_be_an_mqtt_topic_level_is_refused(code: str) -> None:
    document = example()
    document["lots"][0]["gates"][0]["robot"]["code"] = code
    message = refusal(document)
    assert message.startswith(f"lots[0].gates[0].robot.code: {code!r} is not a robot code (")
    assert "not 'gateway'" in message
