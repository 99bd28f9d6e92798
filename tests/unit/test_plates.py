"""Plate normalisation and classification (contracts.md, ``eppark plates check``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eppark.domain.errors import BadInput
from eppark.domain.plates import PROVINCES, check, check_from_json, classify, normalize

VALID = [
    ("粤B12345", "ordinary"),
    ("粤BA12C3", "ordinary"),
    ("京AZZ999", "ordinary"),
    ("粤BD12345", "new_energy"),
    ("粤BFA1234", "new_energy"),
    ("粤B12345D", "new_energy"),
    ("沪A67890F", "new_energy"),
    ("粤B1234挂", "trailer"),
    ("粤BA12B挂", "trailer"),
    ("粤B1234学", "coach"),
    ("粤B1234警", "police"),
    ("粤Z1234港", "hong_kong"),
    ("粤ZA12B港", "hong_kong"),
    ("粤Z1234澳", "macau"),
    ("沪A1234领", "consulate"),
    ("使123456", "embassy"),
    ("粤B1234应急", "emergency"),
    ("粤B12345应急", "emergency"),
]

INVALID = [
    "",
    "粤I12345",  # issuing letter I
    "粤O12345",  # issuing letter O
    "粤B1234O",  # O in the tail
    "粤B12I45",  # I in the tail
    "粤B1234",  # too short
    "粤B123456",  # too long for ordinary, no D/F for new energy
    "XB12345",  # not a province
    "港B12345",  # not a province
    "粤112345",  # issuing character must be a letter
    "粤BA12345",  # 8 characters without D/F
    "粤BD12A45",  # letter among the new-energy digits
    "粤BDI1234",  # I after D
    "粤B1234AD",  # large new energy needs five digits
    "粤B12345G",  # large new energy ends in D or F
    "粤B12345挂",  # trailer has four X
    "粤B123挂",
    "粤I1234挂",
    "粤B123学",
    "粤BO234警",
    "粤B1234港",  # 港 only after 粤Z
    "湘Z1234港",
    "粤Z12345港",
    "京Z1234澳",
    "沪A12345领",
    "使12345",  # embassy: six digits
    "使1234567",
    "使12345A",
    "使B12345",
    "粤B123应急",  # emergency: four or five X
    "粤B123456应急",
    "粤B1234急",
    "粤B١٢٣٤٥",  # Arabic-Indic digits are not plate digits
]


@pytest.mark.parametrize(("plate", "kind"), VALID)
def test_valid_kinds(plate: str, kind: str) -> None:
    assert check(plate) == {"valid": True, "plate": plate, "kind": kind}
    assert classify(plate) == kind


@pytest.mark.parametrize("plate", INVALID)
def test_invalid_plates_are_unknown(plate: str) -> None:
    assert check(plate) == {"valid": False, "plate": normalize(plate), "kind": "unknown"}
    assert classify(plate) is None


def test_seven_characters_with_d_are_ordinary_not_new_energy() -> None:
    assert classify("粤BD1234") == "ordinary"


def test_the_31_provinces() -> None:
    assert len(PROVINCES) == 31
    assert len(set(PROVINCES)) == 31
    for province in PROVINCES:
        assert classify(f"{province}A12345") == "ordinary"
        assert classify(f"{province}A1234应急") == "emergency"


@pytest.mark.parametrize(
    ("text", "plate"),
    [
        ("粤b·12345", "粤B12345"),
        ("粤B・12345", "粤B12345"),
        ("粤B･12345", "粤B12345"),
        ("粤B•12345", "粤B12345"),
        ("粤B‧12345", "粤B12345"),
        ("粤ＢＤ１２３４５", "粤BD12345"),
        ("粤ｂｄ１２３４５", "粤BD12345"),
        ("ＡＢＣ", "ABC"),
        ("粤 B 123 45", "粤B12345"),
        ("粤\u3000B12345", "粤B12345"),
        (" 粤B12345\t\n", "粤B12345"),
        ("粤B-12345", "粤B12345"),
        ("粤B－12345", "粤B12345"),
        ("粤B.12345", "粤B12345"),
        ("粤B．12345", "粤B12345"),
        ("粤b-d·123.45", "粤BD12345"),
        ("", ""),
    ],
)
def test_normalize(text: str, plate: str) -> None:
    assert normalize(text) == plate


def test_check_normalizes_then_classifies() -> None:
    assert check("粤b·12345") == {"valid": True, "plate": "粤B12345", "kind": "ordinary"}
    assert check("粤ｂ－ｄ１２３４５") == {
        "valid": True,
        "plate": "粤BD12345",
        "kind": "new_energy",
    }


def test_empty_string() -> None:
    assert check("") == {"valid": False, "plate": "", "kind": "unknown"}
    assert check("  · - ") == {"valid": False, "plate": "", "kind": "unknown"}


def test_check_from_json_accepts_string_or_object() -> None:
    assert check_from_json("粤b12345") == check("粤B12345")
    assert check_from_json({"plate": "粤b12345"}) == check("粤B12345")
    assert check_from_json({"plate": ""}) == check("")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"plate": 12345}, "plate"),
        ({"plate": None}, "plate"),
        ({}, "plate"),
        (12345, "input"),
        (["粤B12345"], "input"),
        (None, "input"),
    ],
)
def test_check_from_json_bad_input(value: object, field: str) -> None:
    with pytest.raises(BadInput) as caught:
        check_from_json(value)
    assert caught.value.field == field


@given(st.text())
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@given(st.text())
def test_check_never_fails_and_is_consistent(text: str) -> None:
    result = check(text)
    assert result["plate"] == normalize(text)
    assert result["valid"] == (result["kind"] != "unknown")
    assert not any(ch.isspace() or ch in "-.·・•‧" for ch in result["plate"])


_P = f"[{PROVINCES}]"
_X = "[A-HJ-NP-Z0-9]"


@given(st.from_regex(f"{_P}[A-HJ-NP-Z]{_X}{{5}}", fullmatch=True))
def test_generated_ordinary_plates(plate: str) -> None:
    assert classify(plate) == "ordinary"
    assert check(plate.lower())["kind"] == "ordinary"


@given(st.from_regex(f"{_P}[A-HJ-NP-Z](?:[DF]{_X}[0-9]{{4}}|[0-9]{{5}}[DF])", fullmatch=True))
def test_generated_new_energy_plates(plate: str) -> None:
    assert classify(plate) == "new_energy"
