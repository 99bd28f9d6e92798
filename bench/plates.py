"""Benchmark: misread-aware plate matching vs plain Levenshtein on realistic lots.

Lots: 80% 粤B plates, 8% other 粤 issuing letters, 12% other provinces; 20%
new-energy (90% small ``[DF] X dddd``, 10% large ``ddddd [DF]``), the rest
ordinary with digit-heavy tails (each of the 5 characters a letter with
probability 0.3, at most 2 letters, as GA 36 allows for chosen numbers);
letters never I or O. Misreads follow the integrators' error mix
(protocols.md): a look-alike substitution 45%, the last character dropped
25%, a wrong province 12%, one extra character 8% (60% trailing), a
combination of two of those 8%, an unrelated substitution 2%.

Both methods answer the same queries with the same fixed seed. Our matcher is
built once per lot (build time reported apart); the baseline is rapidfuzz
``process.extract`` with ``Levenshtein.normalized_similarity`` over the
normalised plates. ``python -m bench.plates`` prints the table.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Sequence
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from eppark.domain.matching import LOOKALIKES, PlateMatcher
from eppark.domain.plates import DIGITS, LETTERS, PROVINCES, classify, normalize

SEED = 20260501
DEFAULT_QUERIES = {1000: 2000, 10000: 2000, 100000: 300}
"""Queries per lot size (fewer at 100k to keep the run under a minute)."""

_CHARS = LETTERS + DIGITS
_OTHER_PROVINCES = PROVINCES.replace("粤", "")
_LOOK: dict[str, list[str]] = {}
for _pair in LOOKALIKES:
    _LOOK.setdefault(_pair[0], []).append(_pair[1])
    _LOOK.setdefault(_pair[1], []).append(_pair[0])


def _ordinary_tail(rng: random.Random) -> str:
    while True:
        letters = [rng.random() < 0.3 for _ in range(5)]
        if sum(letters) <= 2:
            break
    return "".join(
        rng.choice(LETTERS) if is_letter else rng.choice(DIGITS) for is_letter in letters
    )


def _new_energy_tail(rng: random.Random) -> str:
    digits = "".join(rng.choice(DIGITS) for _ in range(4))
    if rng.random() < 0.9:
        return rng.choice("DF") + rng.choice(_CHARS) + digits
    return digits + rng.choice(DIGITS) + rng.choice("DF")


def make_plate(rng: random.Random) -> str:
    """One realistic plate of a Shenzhen lot."""
    roll = rng.random()
    if roll < 0.80:
        head = "粤B"
    elif roll < 0.88:
        head = "粤" + rng.choice(LETTERS.replace("B", ""))
    else:
        head = rng.choice(_OTHER_PROVINCES) + rng.choice(LETTERS)
    body = _new_energy_tail(rng) if rng.random() < 0.2 else _ordinary_tail(rng)
    return head + body


def make_lot(rng: random.Random, size: int) -> list[str]:
    """``size`` distinct valid plates."""
    seen: dict[str, None] = {}
    while len(seen) < size:
        plate = make_plate(rng)
        assert classify(plate) is not None, plate
        seen[plate] = None
    return list(seen)


def _lookalike(rng: random.Random, plate: str) -> str:
    positions = [i for i in range(1, len(plate)) if plate[i] in _LOOK]
    if not positions:
        return _unrelated(rng, plate)
    i = rng.choice(positions)
    return plate[:i] + rng.choice(_LOOK[plate[i]]) + plate[i + 1 :]


def _drop_last(rng: random.Random, plate: str) -> str:
    return plate[:-1]


def _province(rng: random.Random, plate: str) -> str:
    return rng.choice(PROVINCES.replace(plate[0], "")) + plate[1:]


def _extra(rng: random.Random, plate: str) -> str:
    i = len(plate) if rng.random() < 0.6 else rng.randrange(1, len(plate) + 1)
    return plate[:i] + rng.choice(_CHARS) + plate[i:]


def _unrelated(rng: random.Random, plate: str) -> str:
    i = rng.randrange(1, len(plate))
    return plate[:i] + rng.choice(_CHARS.replace(plate[i], "")) + plate[i + 1 :]


_SINGLE = (_lookalike, _drop_last, _province, _extra)


def misread(rng: random.Random, plate: str) -> str:
    """What a camera might read for ``plate``, following the integrators' error mix."""
    roll = rng.random()
    if roll < 0.45:
        return _lookalike(rng, plate)
    if roll < 0.70:
        return _drop_last(rng, plate)
    if roll < 0.82:
        return _province(rng, plate)
    if roll < 0.90:
        return _extra(rng, plate)
    if roll < 0.98:
        first, second = rng.sample(_SINGLE, 2)
        return second(rng, first(rng, plate))
    return _unrelated(rng, plate)


def _recall(rank: int | None, k: int) -> int:
    return int(rank is not None and rank < k)


def _rank(found: Sequence[str], truth: str) -> int | None:
    for index, plate in enumerate(found):
        if plate == truth:
            return index
    return None


def run(
    sizes: Sequence[int] = (1000, 10000, 100000), queries: dict[int, int] | None = None
) -> list[dict[str, Any]]:
    """Recall@1, recall@6 and ms/query per lot size, ours vs plain Levenshtein."""
    counts = {**DEFAULT_QUERIES, **(queries or {})}
    rows: list[dict[str, Any]] = []
    for size in sizes:
        rng = random.Random(SEED + size)
        lot = make_lot(rng, size)
        truths = [rng.choice(lot) for _ in range(counts.get(size, 1000))]
        reads = [misread(rng, truth) for truth in truths]
        started = time.perf_counter()
        matcher = PlateMatcher(lot)
        build_ms = (time.perf_counter() - started) * 1000
        normal_lot = [normalize(plate) for plate in lot]

        def ours(read: str, matcher: PlateMatcher = matcher) -> list[str]:
            return [plate for plate, _ in matcher.match(read, 6)]

        def levenshtein(read: str, lot: list[str] = normal_lot) -> list[str]:
            found = process.extract(
                normalize(read), lot, scorer=Levenshtein.normalized_similarity, limit=6
            )
            return [plate for plate, _, _ in found]

        for method, find in (("eppark", ours), ("levenshtein", levenshtein)):
            hits1 = hits6 = 0
            started = time.perf_counter()
            for read, truth in zip(reads, truths, strict=True):
                rank = _rank(find(read), truth)
                hits1 += _recall(rank, 1)
                hits6 += _recall(rank, 6)
            elapsed = time.perf_counter() - started
            rows.append(
                {
                    "bench": "plates",
                    "lot_size": size,
                    "method": method,
                    "queries": len(reads),
                    "recall@1": round(hits1 / len(reads), 4),
                    "recall@6": round(hits6 / len(reads), 4),
                    "ms_per_query": round(elapsed * 1000 / len(reads), 3),
                    "build_ms": round(build_ms, 1) if method == "eppark" else None,
                }
            )
    return rows


def main() -> None:
    """Print the benchmark table."""
    columns = ("lot_size", "method", "queries", "recall@1", "recall@6", "ms_per_query", "build_ms")
    sys.stdout.write(" | ".join(f"{c:>12}" for c in columns) + "\n")
    for row in run():
        cells = ("-" if row[c] is None else row[c] for c in columns)
        sys.stdout.write(" | ".join(f"{cell!s:>12}" for cell in cells) + "\n")


if __name__ == "__main__":
    main()
