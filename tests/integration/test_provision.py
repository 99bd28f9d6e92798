"""``eppark provision FILE``: does what the file says, once; a bad file changes nothing."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import Group, User
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError
from django.db import connection, connections, models
from django.test.utils import CaptureQueriesContext

from eppark.accounts.models import StaffProfile
from eppark.calls.models import CallCentre
from eppark.console.models import Seat
from eppark.devices.keys import key_digest
from eppark.devices.models import Camera, Robot
from eppark.lots.models import Gate, Lot
from eppark.passes.models import MonthlyPass, PassPlate
from eppark.provisioning.demo_city import demo_city
from eppark.provisioning.schema import MAX_LENGTH

pytestmark = pytest.mark.django_db

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "provision-example.yaml"
CHINA = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=CHINA)

TABLES: list[type[models.Model]] = [
    Lot,
    Gate,
    Robot,
    Camera,
    MonthlyPass,
    PassPlate,
    User,
    StaffProfile,
    StaffProfile.lots.through,
    User.groups.through,
    Group,
    Seat,
    CallCentre,
]


def example() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return document


def write(tmp_path: Path, document: Any, name: str = "city.yaml") -> Path:
    path = tmp_path / name
    if name.endswith(".json") or name.endswith(".txt"):
        path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def provision(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("provision", str(path), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refusal(path: Path) -> str:
    with pytest.raises(CommandError) as caught:
        provision(path)
    assert caught.value.returncode == 2
    return str(caught.value)


def dump() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table provisioning touches, updated_at included."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values()) for model in TABLES
    }


def counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in TABLES}


def writes(queries: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]


@pytest.fixture
def example_file(tmp_path: Path) -> Path:
    return write(tmp_path, example())


# --- the contract's example ----------------------------------------------------------------


def test_example_provisions_exactly_what_it_says() -> None:
    out = provision(EXAMPLE)
    assert "lots     1 created, 0 updated, 0 unchanged" in out
    lot = Lot.objects.get()
    assert (lot.code, lot.name, lot.temp_entry_confirmation, lot.capacity) == (
        "caike",
        "彩科彩悦大厦",
        True,
        300,
    )
    assert (lot.latitude, lot.longitude) == (Decimal("22.5431"), Decimal("113.9497"))
    assert (lot.emergency_contact_name, lot.emergency_contact_phone) == ("张三", "13000000000")
    assert lot.tariff == {
        "free_minutes": 30,
        "first": {"minutes": 60, "price": 500},
        "unit": {"minutes": 60, "price": 300},
        "cap": {"price": 3000, "per": "24h"},
    }
    assert lot.tariff_text
    assert not lot.tariff_text.startswith("⚠")
    gate = Gate.objects.get()
    assert (gate.lot, gate.code, gate.name, gate.direction) == (lot, "exit-1", "出口1", "exit")
    robot = Robot.objects.get()
    assert (robot.code, robot.name, robot.phone, robot.lot, robot.gate) == (
        "EP-0001",
        "彩科出口",
        "14400000001",
        lot,
        gate,
    )
    assert robot.mqtt_password_hash == ""
    camera = Camera.objects.get()
    assert (camera.vendor, camera.key_digest, camera.serial, camera.lot, camera.gate) == (
        "vzenith",
        key_digest("k-caike-exit-1"),
        "eff50e18-e3d3862b",
        lot,
        gate,
    )
    monthly = MonthlyPass.objects.get()
    assert (monthly.lot, monthly.owner, monthly.phone, monthly.spaces) == (
        lot,
        "李四",
        "13800000000",
        1,
    )
    assert monthly.valid_from == datetime(2026, 1, 1, tzinfo=CHINA)
    assert monthly.valid_until == datetime(2026, 12, 31, 23, 59, 59, tzinfo=CHINA)
    assert [(p.plate, p.lot) for p in monthly.plates.all()] == [("粤B12345", lot)]
    assert not monthly.is_shared

    operator = User.objects.get(username="op-caike")
    assert operator.is_staff
    assert not operator.has_usable_password()
    assert (operator.staff.role, operator.staff.name) == ("operator", "王五")
    assert list(operator.staff.lots.all()) == [lot]
    assert [g.name for g in operator.groups.all()] == ["运营"]
    assert not Seat.objects.filter(agent=operator).exists()

    agent = User.objects.get(username="kf-001")
    assert not agent.has_usable_password()
    assert (agent.staff.role, agent.staff.name) == ("agent", "客服一号")
    assert list(agent.staff.lots.all()) == [lot]
    assert [g.name for g in agent.groups.all()] == ["客服"]
    assert Seat.objects.get(number="1001").agent == agent


def test_second_run_changes_nothing(example_file: Path) -> None:
    provision(example_file)
    before = dump()
    with CaptureQueriesContext(connection) as queries:
        out = provision(example_file)
    assert dump() == before
    assert writes(queries) == []
    assert "lots     0 created, 0 updated, 1 unchanged" in out
    assert "users    0 created, 0 updated, 2 unchanged" in out
    assert out.rstrip().endswith("nothing to change")


def test_changed_file_updates_only_what_changed(tmp_path: Path) -> None:
    document = example()
    provision(write(tmp_path, document))
    before = {
        m._meta.label: {r["id"]: r for r in rows}
        for m, rows in zip(TABLES, dump().values(), strict=True)
    }
    document["lots"][0]["gates"][0]["name"] = "出口一"
    document["lots"][0]["passes"][0]["valid_until"] = "2027-12-31T23:59:59+08:00"
    out = provision(write(tmp_path, document))
    assert "gates    0 created, 1 updated, 0 unchanged" in out
    assert "passes   0 created, 1 updated, 0 unchanged" in out
    assert "lots     0 created, 0 updated, 1 unchanged" in out
    after = {
        m._meta.label: {r["id"]: r for r in rows}
        for m, rows in zip(TABLES, dump().values(), strict=True)
    }
    changed = {
        (label, pk)
        for label, rows in after.items()
        for pk, row in rows.items()
        if before[label].get(pk) != row
    }
    gate, monthly = Gate.objects.get(), MonthlyPass.objects.get()
    assert changed == {("lots.Gate", gate.pk), ("passes.MonthlyPass", monthly.pk)}
    assert gate.name == "出口一"
    assert gate.updated_at > before["lots.Gate"][gate.pk]["updated_at"]
    assert monthly.valid_until == datetime(2027, 12, 31, 23, 59, 59, tzinfo=CHINA)


def test_optional_keys_left_out_keep_what_is_there(tmp_path: Path) -> None:
    provision(EXAMPLE)
    lot_before = Lot.objects.values().get()
    provision(write(tmp_path, {"lots": [{"code": "caike", "name": "彩科彩悦大厦"}]}))
    assert Lot.objects.values().get() == lot_before


def test_nothing_the_file_leaves_out_is_deleted(tmp_path: Path) -> None:
    provision(EXAMPLE)
    before = counts()
    provision(write(tmp_path, {"lots": [{"code": "other", "name": "Other"}]}))
    after = counts()
    assert after.pop("lots.Lot") == before.pop("lots.Lot") + 1
    assert after == before


def test_dry_run_saves_nothing_but_tells(tmp_path: Path) -> None:
    before = dump()
    out = provision(EXAMPLE, "--dry-run")
    assert "lots     1 created" in out
    assert out.rstrip().endswith("dry run: nothing was saved")
    assert dump() == before


# --- formats -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["city.json", "city.txt", "city.yml", "city.YAML"])
def test_json_and_yaml_both_work(tmp_path: Path, name: str) -> None:
    provision(write(tmp_path, example(), name))
    assert Lot.objects.get().code == "caike"
    assert MonthlyPass.objects.get().plates.get().plate == "粤B12345"


def test_the_same_file_as_json_after_yaml_changes_nothing(tmp_path: Path) -> None:
    provision(EXAMPLE)
    before = dump()
    out = provision(write(tmp_path, example(), "city.json"))
    assert dump() == before
    assert out.rstrip().endswith("nothing to change")


# --- passes --------------------------------------------------------------------------------


def test_shared_space_group(tmp_path: Path) -> None:
    document = example()
    document["lots"][0]["passes"] = [
        {
            "plates": ["粤B11111", "粤bd·12345"],
            "owner": "陈七",
            "valid_from": "2026-01-01T00:00:00+08:00",
            "valid_until": "2026-12-31T23:59:59+08:00",
            "spaces": 1,
        }
    ]
    provision(write(tmp_path, document))
    monthly = MonthlyPass.objects.get()
    assert sorted(p.plate for p in monthly.plates.all()) == ["粤B11111", "粤BD12345"]
    assert monthly.spaces == 1
    assert monthly.is_shared


def test_pass_is_found_by_any_of_its_plates_and_its_plates_become_the_listed_ones(
    tmp_path: Path,
) -> None:
    document = example()
    entry = document["lots"][0]["passes"][0]
    entry["plates"] = ["粤B12345", "粤B22222"]
    provision(write(tmp_path, document))
    monthly = MonthlyPass.objects.get()
    entry["plates"] = ["粤B22222", "粤B33333"]
    entry["spaces"] = 2
    out = provision(write(tmp_path, document))
    assert "passes   0 created, 1 updated, 0 unchanged" in out
    again = MonthlyPass.objects.get()
    assert again.pk == monthly.pk
    assert again.spaces == 2
    assert sorted(p.plate for p in again.plates.all()) == ["粤B22222", "粤B33333"]


def test_plates_split_over_two_entries_make_two_passes(tmp_path: Path) -> None:
    document = example()
    entry = document["lots"][0]["passes"][0]
    entry["plates"] = ["粤B12345", "粤B22222"]
    provision(write(tmp_path, document))
    document["lots"][0]["passes"] = [
        {**entry, "plates": ["粤B12345"]},
        {**entry, "plates": ["粤B22222"], "owner": "周八"},
    ]
    provision(write(tmp_path, document))
    assert MonthlyPass.objects.count() == 2
    assert MonthlyPass.objects.get(plates__plate="粤B22222").owner == "周八"
    before = dump()
    provision(write(tmp_path, document))
    assert dump() == before


def test_same_plate_in_two_lots(tmp_path: Path) -> None:
    document = example()
    other = {
        "code": "other",
        "name": "Other",
        "passes": copy.deepcopy(document["lots"][0]["passes"]),
    }
    document["lots"].append(other)
    provision(write(tmp_path, document))
    assert PassPlate.objects.filter(plate="粤B12345").count() == 2


# --- devices -------------------------------------------------------------------------------


def test_robot_swapped_between_gates(tmp_path: Path) -> None:
    document = example()
    gates = document["lots"][0]["gates"]
    gates.append(
        {
            "code": "entry-1",
            "name": "入口1",
            "direction": "entry",
            "robot": {"code": "EP-0002", "name": "彩科入口"},
        }
    )
    provision(write(tmp_path, document))
    gates[0]["robot"]["code"], gates[1]["robot"]["code"] = "EP-0002", "EP-0001"
    out = provision(write(tmp_path, document))
    assert Robot.objects.get(code="EP-0001").gate == Gate.objects.get(code="entry-1")
    assert Robot.objects.get(code="EP-0002").gate == Gate.objects.get(code="exit-1")
    assert "note: robot EP-0001 left gate caike/exit-1 for EP-0002" in out
    before = dump()
    provision(write(tmp_path, document))
    assert dump() == before


def test_ezviz_camera_belongs_to_the_gates_robot_and_a_key_can_be_rotated(tmp_path: Path) -> None:
    document = example()
    cameras = document["lots"][0]["gates"][0]["cameras"]
    cameras.append({"vendor": "ezviz", "serial": "D12345678", "name": "环境"})
    provision(write(tmp_path, document))
    ezviz = Camera.objects.get(vendor="ezviz")
    assert (ezviz.ezviz_serial, ezviz.robot, ezviz.key_digest) == (
        "D12345678",
        Robot.objects.get(),
        None,
    )
    lpr = Camera.objects.get(vendor="vzenith")
    cameras[0]["key"] = "k-caike-exit-1-rotated"
    provision(write(tmp_path, document))
    assert Camera.objects.count() == 2
    assert Camera.objects.get(pk=lpr.pk).key_digest == key_digest("k-caike-exit-1-rotated")


# --- users ---------------------------------------------------------------------------------


def test_a_password_set_in_between_is_never_touched(example_file: Path) -> None:
    provision(example_file)
    agent = User.objects.get(username="kf-001")
    agent.set_password("a-long-secret-1")
    agent.save()
    provision(example_file)
    agent.refresh_from_db()
    assert agent.check_password("a-long-secret-1")


def test_role_change_moves_the_user_to_exactly_the_new_group(tmp_path: Path) -> None:
    document = example()
    provision(write(tmp_path, document))
    operator = User.objects.get(username="op-caike")
    own = Group.objects.create(name="夜班")
    operator.groups.add(own)
    document["users"][0]["role"] = "admin"
    provision(write(tmp_path, document))
    assert sorted(g.name for g in operator.groups.all()) == sorted(["管理员", "夜班"])
    assert StaffProfile.objects.get(user=operator).role == "admin"


def test_seat_bound_to_another_user_is_rebound_and_said(tmp_path: Path) -> None:
    document = example()
    provision(write(tmp_path, document))
    document["users"] = [
        {"username": "kf-002", "role": "agent", "lots": ["caike"], "seat": "1001"},
        {"username": "kf-001", "role": "agent", "seat": "1002"},
    ]
    out = provision(write(tmp_path, document))
    assert "note: seat 1001 rebound from kf-001 to kf-002" in out
    assert Seat.objects.get(number="1001").agent == User.objects.get(username="kf-002")
    assert Seat.objects.get(number="1002").agent == User.objects.get(username="kf-001")
    assert list(User.objects.get(username="kf-001").staff.lots.values_list("code", flat=True)) == [
        "caike"
    ]


def test_user_may_name_a_lot_that_is_only_in_the_database(tmp_path: Path) -> None:
    provision(EXAMPLE)
    provision(
        write(tmp_path, {"users": [{"username": "op-2", "role": "operator", "lots": ["caike"]}]})
    )
    assert list(User.objects.get(username="op-2").staff.lots.all()) == [Lot.objects.get()]


# --- refusals: the file changes nothing and names the bad entry ----------------------------

Bad = Callable[[dict[str, Any]], str]
"""Adds a bad entry at the end of a document; returns the expected error."""


def _good_pass(**changes: Any) -> dict[str, Any]:
    entry = {
        "plates": ["粤B88888"],
        "owner": "钱九",
        "valid_from": "2026-01-01T00:00:00+08:00",
        "valid_until": "2026-12-31T23:59:59+08:00",
    }
    return {**entry, **changes}


def _last_pass(document: dict[str, Any], entry: dict[str, Any]) -> str:
    lot = len(document["lots"]) - 1
    document["lots"][-1]["passes"].append(entry)
    return f"lots[{lot}].passes[{len(document['lots'][-1]['passes']) - 1}]"


def _last_gate(document: dict[str, Any], gate: dict[str, Any]) -> str:
    lot = len(document["lots"]) - 1
    document["lots"][-1]["gates"].append(gate)
    return f"lots[{lot}].gates[{len(document['lots'][-1]['gates']) - 1}]"


def _last_lot(document: dict[str, Any], lot: dict[str, Any]) -> str:
    document["lots"].append(lot)
    return f"lots[{len(document['lots']) - 1}]"


def _last_user(document: dict[str, Any], user: dict[str, Any]) -> str:
    document["users"].append(user)
    return f"users[{len(document['users']) - 1}]"


def _bad_plate(d: dict[str, Any]) -> str:
    return f"{_last_pass(d, _good_pass(plates=['粤B1234']))}.plates[0]: 粤B1234 is not a plate"


def _bad_direction(d: dict[str, Any]) -> str:
    path = _last_gate(d, {"code": "side", "name": "侧门", "direction": "both"})
    return f'{path}.direction: must be "entry" or "exit"'


def _bad_role(d: dict[str, Any]) -> str:
    path = _last_user(d, {"username": "boss", "role": "owner"})
    return f'{path}.role: must be "agent", "operator" or "admin", not \'owner\''


def _duplicate_lot(d: dict[str, Any]) -> str:
    first = next(k for k, lot in enumerate(d["lots"]) if lot["code"] == "caike")
    path = _last_lot(d, {"code": "caike", "name": "x"})
    return f"{path}.code: lot code 'caike' is already used by lots[{first}].code"


def _duplicate_gate(d: dict[str, Any]) -> str:
    first = d["lots"][-1]["gates"][0]["code"]
    lot = len(d["lots"]) - 1
    path = _last_gate(d, {"code": first, "name": "x", "direction": "exit"})
    return f"{path}.code: gate code '{first}' is already used by lots[{lot}].gates[0].code"


def _camera_key_twice(d: dict[str, Any]) -> str:
    key = d["lots"][0]["gates"][0]["cameras"][0]["key"]
    gate = {
        "code": "side",
        "name": "侧门",
        "direction": "exit",
        "cameras": [{"vendor": "dahua", "key": key}],
    }
    path = _last_gate(d, gate)
    first = "lots[0].gates[0].cameras[0].key"
    return f"{path}.cameras[0].key: camera key '{key}' is already used by {first}"


def test_a_robot_code_that_cannot_be_a_topic_level_is_refused_and_nothing_changes(
    tmp_path: Path,
) -> None:
    document = example()
    document["lots"][0]["gates"][0]["robot"]["code"] = "出口 1"
    before = counts()
    message = refusal(write(tmp_path, document))
    assert "lots[0].gates[0].robot.code: '出口 1' is not a robot code" in message
    assert counts() == before


def test_a_cameras_key_is_stored_only_as_its_digest(example_file: Path) -> None:
    provision(example_file)
    rows = str(list(Camera.objects.values())) + str(list(Camera.history.values()))
    assert "k-caike-exit-1" not in rows
    camera = Camera.objects.get()
    assert (camera.key_digest, camera.key_hint) == (key_digest("k-caike-exit-1"), "it-1")


def _typo(d: dict[str, Any]) -> str:
    path = _last_gate(d, {"code": "side", "name": "侧门", "direction": "exit", "camera": []})
    return f"{path}.camera: is not a known key (known: code, name, direction, robot, cameras)"


def _no_offset(d: dict[str, Any]) -> str:
    path = _last_pass(d, _good_pass(valid_until="2026-12-31 23:59:59"))
    return f"{path}.valid_until: '2026-12-31 23:59:59' has no UTC offset (e.g. +08:00)"


def _until_before_from(d: dict[str, Any]) -> str:
    path = _last_pass(d, _good_pass(valid_until="2025-06-30T00:00:00+08:00"))
    return (
        f"{path}.valid_until: 2025-06-30T00:00:00+08:00 is before valid_from "
        "2026-01-01T00:00:00+08:00"
    )


def _no_spaces(d: dict[str, Any]) -> str:
    return f"{_last_pass(d, _good_pass(spaces=0))}.spaces: must be ≥ 1"


def _negative_capacity(d: dict[str, Any]) -> str:
    return f"{_last_lot(d, {'code': 'neg', 'name': 'x', 'capacity': -5})}.capacity: must be ≥ 0"


def _bad_latitude(d: dict[str, Any]) -> str:
    path = _last_lot(d, {"code": "far", "name": "x", "location": {"lat": 122.5, "lng": 113.9}})
    return f"{path}.location.lat: 122.5 is out of range (-90 to 90)"


def _plate_on_two_passes(d: dict[str, Any]) -> str:
    lot = len(d["lots"]) - 1
    plate = d["lots"][-1]["passes"][0]["plates"][0]
    path = _last_pass(d, _good_pass(plates=["粤B88888", plate.lower()]))
    return f"{path}.plates[1]: plate {plate} is already used by lots[{lot}].passes[0].plates[0]"


def _grace_over_payable(d: dict[str, Any]) -> str:
    path = _last_lot(
        d, {"code": "g", "name": "x", "expired_grace_days": 5, "expired_payable_days": 4}
    )
    return f"{path}.expired_grace_days: grace (5 days) must not exceed payable (4 days)"


def _bad_yaml_value(d: dict[str, Any]) -> str:
    path = _last_user(d, {"username": "kf-009", "role": "agent", "seat": 1009})
    return f'{path}.seat: must be a string (quote it: "1009")'


SCHEMA_ERRORS: list[Bad] = [
    _bad_plate,
    _bad_direction,
    _bad_role,
    _duplicate_lot,
    _duplicate_gate,
    _camera_key_twice,
    _typo,
    _no_offset,
    _until_before_from,
    _no_spaces,
    _negative_capacity,
    _bad_latitude,
    _plate_on_two_passes,
    _grace_over_payable,
    _bad_yaml_value,
]


def _unknown_user_lot(d: dict[str, Any]) -> str:
    path = _last_user(d, {"username": "op-x", "role": "operator", "lots": ["caike", "xyz"]})
    return f'{path}.lots[1]: no lot "xyz" in the file or the database'


def _pass_spanning_two_passes(d: dict[str, Any]) -> str:
    path = _last_pass(d, _good_pass(plates=["粤B12345", "粤B67890"]))
    return (
        f"{path}.plates: these plates are on 2 different passes in lot 'caike' "
        "(粤B12345 is on the pass of 李四 (#{a}); 粤B67890 is on the pass of 赵六 (#{b})); "
        "one entry cannot join them"
    )


DATABASE_ERRORS: list[Bad] = [_unknown_user_lot, _pass_spanning_two_passes]


@pytest.fixture
def existing(tmp_path: Path) -> None:
    """The example, plus a second pass in caike, is in the database already."""
    document = example()
    document["lots"][0]["passes"].append(_good_pass(plates=["粤B67890"], owner="赵六"))
    provision(write(tmp_path, document, "existing.yaml"))


def city_with_caike_last() -> dict[str, Any]:
    """The demo city (many good entries that would change the database), caike moved last."""
    document = demo_city(NOW)
    document["lots"].append(document["lots"].pop(0))
    return document


def _check_refused(tmp_path: Path, bad: Bad) -> None:
    document = city_with_caike_last()
    expected = bad(document)
    if "{a}" in expected:
        a = MonthlyPass.objects.get(plates__plate="粤B12345").pk
        b = MonthlyPass.objects.get(plates__plate="粤B67890").pk
        expected = expected.replace("{a}", str(a)).replace("{b}", str(b))
    before, rows = counts(), dump()
    assert refusal(write(tmp_path, document)) == expected
    assert counts() == before
    assert dump() == rows


@pytest.mark.usefixtures("existing")
@pytest.mark.parametrize("bad", SCHEMA_ERRORS, ids=lambda f: f.__name__.strip("_"))
def test_invalid_file_changes_nothing_and_names_the_entry(tmp_path: Path, bad: Bad) -> None:
    _check_refused(tmp_path, bad)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("existing")
@pytest.mark.parametrize("bad", DATABASE_ERRORS, ids=lambda f: f.__name__.strip("_"))
def test_error_found_while_applying_rolls_everything_back(tmp_path: Path, bad: Bad) -> None:
    _check_refused(tmp_path, bad)


def test_unknown_lot_of_a_user_in_the_database_check(tmp_path: Path) -> None:
    document = {"users": [{"username": "op-x", "role": "operator", "lots": ["nowhere"]}]}
    assert refusal(write(tmp_path, document)) == (
        'users[0].lots[0]: no lot "nowhere" in the file or the database'
    )
    assert not User.objects.filter(username="op-x").exists()


def test_grace_over_payable_against_the_database(tmp_path: Path) -> None:
    provision(EXAMPLE)
    document = {"lots": [{"code": "caike", "name": "彩科彩悦大厦", "expired_grace_days": 6}]}
    provision(write(tmp_path, document))
    document = {"lots": [{"code": "caike", "name": "彩科彩悦大厦", "expired_payable_days": 5}]}
    assert refusal(write(tmp_path, document)) == (
        "lots[0].expired_payable_days: grace (6 days) must not exceed payable (5 days) "
        "as lot 'caike' would then have"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lots:\n  - code: x\n   name: y\n", "city.yaml: line 3, column 4: "),
        ("lots: [\n", "city.yaml: line 2, column 1: "),
        ("lots:\n  - {code: a, name: b, code: c}\n", "city.yaml: line 2, column 24: key 'code'"),
        ("", "city.yaml: the file is empty: it needs lots, users and/or call_centres"),
        (
            "[]",
            "city.yaml: the file must hold a mapping with the keys lots, users and/or call_centres",
        ),
    ],
)
def test_unreadable_yaml_names_the_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "city.yaml"
    path.write_text(text, encoding="utf-8")
    message = refusal(path)
    assert message.startswith(expected.replace("city.yaml", str(path)))
    assert Lot.objects.count() == 0


def test_missing_file(tmp_path: Path) -> None:
    assert refusal(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: no such file"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "city.yaml"
    path.write_bytes("lots: []\nname: 彩科".encode("gb18030"))
    assert refusal(path).startswith(f"{path}: is not UTF-8 text")


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def command_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    """Run as from a shell, in-process; Django's closing of connections would end the test's."""
    monkeypatch.setattr(connections, "close_all", lambda: None)
    # django.setup() would point logging at capsys's stream, closed after the test (every
    # later warning a "--- Logging error ---"): the run's logging is set up already
    monkeypatch.setattr("django.utils.log.configure_logging", lambda *_args: None)

    def run(*args: str) -> tuple[int, str, str]:
        try:
            execute_from_command_line(["eppark", "provision", *args])
            status = 0
        except SystemExit as exc:
            status = int(exc.code or 0)
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def test_command_line_error_is_one_line_and_status_2(
    tmp_path: Path, command_line: Callable[..., tuple[int, str, str]]
) -> None:
    document = example()
    document["lots"][0]["passes"][0]["plates"] = ["粤B1234"]
    status, out, err = command_line(str(write(tmp_path, document)))
    assert status == 2
    assert out == ""
    assert err == "error: lots[0].passes[0].plates[0]: 粤B1234 is not a plate\n"
    assert Lot.objects.count() == 0


def test_command_line_success_prints_the_summary(
    command_line: Callable[..., tuple[int, str, str]],
) -> None:
    status, out, err = command_line(str(EXAMPLE))
    assert (status, err) == (0, "")
    assert out.splitlines()[0] == "lots     1 created, 0 updated, 0 unchanged"


# --- the demo city -------------------------------------------------------------------------


def test_demo_city_provisions_cleanly_and_twice_idempotently(tmp_path: Path) -> None:
    document = demo_city(NOW)
    path = write(tmp_path, document, "demo.json")
    provision(path)
    passes = sum(len(lot["passes"]) for lot in document["lots"])
    assert Lot.objects.count() == len(document["lots"])
    assert MonthlyPass.objects.count() == passes
    assert Robot.objects.count() == Gate.objects.count()
    assert (
        Camera.objects.filter(vendor="ezviz", robot__isnull=False).count() == Robot.objects.count()
    )
    assert any(p.is_shared for p in MonthlyPass.objects.prefetch_related("plates"))
    assert Seat.objects.filter(agent__isnull=False).count() == 4
    before = dump()
    with CaptureQueriesContext(connection) as queries:
        out = provision(path)
    assert writes(queries) == []
    assert dump() == before
    assert out.rstrip().endswith("nothing to change")


def test_demo_city_for_a_later_now_moves_the_passes_in_place(tmp_path: Path) -> None:
    provision(write(tmp_path, demo_city(NOW), "demo.json"))
    before = counts()
    later = NOW + timedelta(days=10)
    out = provision(write(tmp_path, demo_city(later), "demo.json"))
    assert counts() == before
    assert "passes   0 created," in out
    assert "lots     0 created, 0 updated," in out


def test_model_lengths_match_the_schema() -> None:
    models_by_name: dict[str, type[models.Model]] = {
        "lot": Lot,
        "gate": Gate,
        "robot": Robot,
        "camera": Camera,
        "pass": MonthlyPass,
        "plate": PassPlate,
        "user": User,
        "profile": StaffProfile,
        "seat": Seat,
        "call_centre": CallCentre,
    }
    for key, length in MAX_LENGTH.items():
        model, column = key.split(".")
        assert models_by_name[model]._meta.get_field(column).max_length == length, key  # type: ignore[union-attr]


def test_eppark_entry_point_runs_provision(tmp_path: Path) -> None:
    document = example()
    document["lots"][0]["gates"][0]["direction"] = "out"
    path = write(tmp_path, document)
    env = {**os.environ, "EPPARK_VAR_DIR": str(tmp_path / "var"), "EPPARK_TESTING": "1"}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "eppark", "provision", str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == 'error: lots[0].gates[0].direction: must be "entry" or "exit"\n'
