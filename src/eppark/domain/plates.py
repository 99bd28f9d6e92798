"""Chinese licence plates: normalisation and classification (GA 36-2018).

Normalising (what a camera, a driver or an agent typed → one canonical
string): NFKC folds full-width letters, digits and punctuation (``粤Ｂ１２３`` →
``粤B123``) and the ideographic space; letters are upper-cased; whitespace,
``-``, ``.`` and the middle dots ``· ・ • ‧`` (and their full/half-width
forms) are removed. The steps are repeated until nothing changes, so
``normalize`` is idempotent even for exotic input (removing a dot can let
NFKC compose two characters it kept apart before).

Classifying a normalised plate, with P a province character, L a letter other
than I and O, and X such a letter or a digit: ordinary ``P L X{5}``;
new_energy ``P L [DF] X \\d{4}`` (small cars) or ``P L \\d{5} [DF]`` (large);
trailer ``P L X{4} 挂``; coach ``P L X{4} 学``; police ``P L X{4} 警``;
hong_kong ``粤Z X{4} 港``; macau ``粤Z X{4} 澳``; consulate ``P L X{4} 领``;
embassy ``使 \\d{6}``; emergency ``P L X{4,5} 应急``. Readings chosen: digits
are ASCII ``0-9`` only after folding (other Unicode digits are refused);
港/澳 with any province other than 粤Z is invalid; anything else, the empty
string included, is ``unknown``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from eppark.domain.errors import BadInput

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
"""The 31 province characters that open a civil plate."""

LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
"""The letters a plate may carry (I and O are never issued)."""

DIGITS = "0123456789"

UNKNOWN = "unknown"

_SEPARATORS = frozenset("-.·・•‧\u30fb\uff65\u2027\u2022\u00b7")

_P = f"[{PROVINCES}]"
_L = "[A-HJ-NP-Z]"
_X = "[A-HJ-NP-Z0-9]"
_D = "[0-9]"

_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        ("ordinary", f"{_P}{_L}{_X}{{5}}"),
        ("new_energy", f"{_P}{_L}(?:[DF]{_X}{_D}{{4}}|{_D}{{5}}[DF])"),
        ("trailer", f"{_P}{_L}{_X}{{4}}挂"),
        ("coach", f"{_P}{_L}{_X}{{4}}学"),
        ("police", f"{_P}{_L}{_X}{{4}}警"),
        ("hong_kong", f"粤Z{_X}{{4}}港"),
        ("macau", f"粤Z{_X}{{4}}澳"),
        ("consulate", f"{_P}{_L}{_X}{{4}}领"),
        ("embassy", f"使{_D}{{6}}"),
        ("emergency", f"{_P}{_L}{_X}{{4,5}}应急"),
    )
)


_CLEAN = re.compile("[0-9A-Z\u4e00-\u9fff]*")
"""Text that is already normal: ASCII capitals, digits and CJK ideographs (NFKC-stable)."""


def _fold_once(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).upper()
    return "".join(ch for ch in folded if not ch.isspace() and ch not in _SEPARATORS)


def normalize(text: str) -> str:
    """The canonical form of a plate as typed or read: ``粤b·12345`` → ``粤B12345``."""
    if _CLEAN.fullmatch(text):
        return text
    current = text
    for _ in range(8):
        folded = _fold_once(current)
        if folded == current:
            break
        current = folded
    return current


def classify(plate: str) -> str | None:
    """The kind of a normalised plate (``ordinary``, ``new_energy``…), or None if invalid."""
    for kind, pattern in _KINDS:
        if pattern.fullmatch(plate):
            return kind
    return None


def check(text: str) -> dict[str, Any]:
    """``{"valid", "plate", "kind"}`` for any string, the empty one included."""
    plate = normalize(text)
    kind = classify(plate)
    return {"valid": kind is not None, "plate": plate, "kind": kind or UNKNOWN}


def check_from_json(value: Any) -> dict[str, Any]:
    """``check`` for a JSON string or an object ``{"plate": "..."}`` (one ``--jsonl`` line)."""
    if isinstance(value, str):
        return check(value)
    if isinstance(value, Mapping):
        if "plate" not in value:
            raise BadInput("plate", "is required")
        plate = value["plate"]
        if not isinstance(plate, str):
            raise BadInput("plate", "must be a string")
        return check(plate)
    raise BadInput("input", 'must be a plate string or an object {"plate": "..."}')
