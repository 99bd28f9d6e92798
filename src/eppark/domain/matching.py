"""Misread-aware plate matching: which cars inside a lot did the camera most likely read?

The model is a weighted alignment (an edit distance whose costs play the part
of negative log-likelihoods of the errors integrators report), between the
plate of a car inside (``plate``) and what the camera read (``read``), both
normalised (``eppark.domain.plates.normalize``):

- same character: 0;
- an OCR look-alike substitution, in either direction: 1.0 for the pairs the
  integrators name (0↔O/D/Q, 1↔I/L/T/7, 2↔Z/7, 5↔S/6, 6↔G, 8↔B) and 1.6 for
  pairs we judge real but rarer (D/O/Q among themselves, all three being read
  for 0; 7↔T and 7↔Z, a bar and a stem; I↔L, I↔T; 0↔U, an open top; 4↔A, a
  closed top; 3↔8, the left half occluded; E↔F and P↔R, a lost lower stroke;
  M↔N and U↔V, similar outlines);
- a wrong province character (both first characters non-ASCII): 1.5; a
  province character missing from the read: 2.0;
- the plate's last character dropped: 1.0, and 0.8 when the plate has 8
  characters (new-energy plates most often lose their 8th); one extra
  trailing character read: 1.5;
- any other substitution, insertion or deletion: 4.0.

Costs add up along the cheapest alignment; they are hand-set in the spirit
of negative log-likelihoods (cheap = frequent), not fitted. The score is
``exp(-cost / 2)``, rounded to 6 places: 1.0 exactly for an equal normalised
plate, 0.61 for one look-alike or a dropped last character, 0.47 for a wrong
province, 0.14 for one unrelated error, 0.02 for two.

Readings chosen for the contract (``plates match``):

- The k best candidates are listed, whatever their resemblance, so the agent
  always has up to k cars to choose from (the console's "已为你匹配 6 条与该车牌
  相近的…车辆"); a candidate beyond ``MAX_COST`` (8.5: more than two unrelated
  errors) scores 0 and ranks after every resembling one. Indexed lots of more
  than ``SCAN_LIMIT`` cars list only resembling candidates (cost ≤ ``MAX_COST``),
  and beside a confident match (cost ≤ ``CONFIDENT_COST``) only close ones
  (cost ≤ ``CLOSE_COST``): among thousands of cars an unrelated one is no help.
- Ranking is by score, best first; equal scores keep the candidates' input
  order (for a ``PlateMatcher``, the order the cars were added). Duplicate
  candidates are each listed as given.

Speed: a lot of at most ``SCAN_LIMIT`` distinct plates is rescored in full.
Above that, candidates are generated on a canonical *tail* of each plate (the
province character stripped, each look-alike class, named or rarer, mapped to
one representative), on which look-alikes and the province cost nothing and
any close candidate is at most one edit away. An index of each tail and of its
one-character deletions tagged with their position finds exactly those
plates in about 20 dictionary look-ups. Only when no confident match is among
them, a rapidfuzz scan of all tails at Levenshtein distance ≤ 2 (a bound that
no candidate within ``MAX_COST`` can exceed) widens the shortlist. Only the
shortlist is rescored with the weighted model, with early exit once a
candidate cannot reach the top k. A one-shot matcher (``indexed=False``, as
``match_from_json`` uses) skips the index and scans the tails instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from eppark.domain.errors import BadInput
from eppark.domain.fields import integer, join, obj, require, string
from eppark.domain.plates import normalize

SAME = 0.0
LOOKALIKE = 1.0
LOOKALIKE_RARE = 1.6
PROVINCE = 1.5
PROVINCE_MISSING = 2.0
DROP_LAST = 1.0
DROP_LAST_NEW_ENERGY = 0.8
EXTRA_LAST = 1.5
OTHER = 4.0
MAX_COST = 8.5
"""Costs above this (more than two unrelated errors) mean no resemblance: never listed."""
CLOSE_COST = 4.5
"""A close resemblance: at most one unrelated error, or modelled misreads adding up to this."""
CONFIDENT_COST = 3.0
"""A best match this cheap is confident: the index's shortlist then needs no wider scan."""

DEFAULT_K = 6
SCAN_LIMIT = 256
"""Lots with at most this many distinct plates are rescored in full."""

LOOKALIKES = ("0O", "0D", "0Q", "1I", "1L", "1T", "17", "2Z", "27", "5S", "56", "6G", "8B")
"""The look-alike pairs integrators report (protocols.md, "Chinese plates")."""

LOOKALIKES_RARE = (
    "DO",
    "DQ",
    "OQ",
    "7T",
    "7Z",
    "IL",
    "IT",
    "0U",
    "4A",
    "38",
    "EF",
    "PR",
    "MN",
    "UV",
)
"""Look-alike pairs we judge real but rarer."""


def _substitutions() -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for pairs, price in ((LOOKALIKES_RARE, LOOKALIKE_RARE), (LOOKALIKES, LOOKALIKE)):
        for pair in pairs:
            a, b = pair[0], pair[1]
            table.setdefault(a, {})[b] = price
            table.setdefault(b, {})[a] = price
    return table


def _canonical_map() -> dict[int, str]:
    parent: dict[str, str] = {}

    def find(ch: str) -> str:
        while parent.get(ch, ch) != ch:
            ch = parent[ch]
        return ch

    for pair in LOOKALIKES + LOOKALIKES_RARE:
        ra, rb = find(pair[0]), find(pair[1])
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {ord(ch): find(ch) for ch in parent}


_SUB = _substitutions()
_NO_SUB: dict[str, float] = {}
_CANON = _canonical_map()


def _has_province(plate: str) -> bool:
    return bool(plate) and not plate[0].isascii()


def tail(plate: str) -> str:
    """The canonical tail of a normalised plate: province stripped, look-alikes folded."""
    body = plate[1:] if _has_province(plate) else plate
    return body.translate(_CANON)


def cost(read: str, plate: str, limit: float = math.inf) -> float:
    """The weighted alignment cost of a camera ``read`` of a car's ``plate`` (both normalised).

    Returns ``math.inf`` as soon as the cost is sure to exceed ``limit``.
    """
    if read == plate:
        return SAME
    n, m = len(plate), len(read)
    start = 0
    while start < n and start < m and plate[start] == read[start]:
        start += 1
    other, extra_last, sub_table, no_sub = OTHER, EXTRA_LAST, _SUB, _NO_SUB
    drop_last = DROP_LAST_NEW_ENERGY if n == 8 else DROP_LAST
    province_start = start == 0 and _has_province(plate)
    columns = range(start + 1, m + 1)
    # prev[j - start]: the cheapest alignment of plate[start:i] with read[start:j].
    prev = [0.0]
    for j in columns:
        prev.append(prev[-1] + (extra_last if start == n and j == m else other))
    for i in range(start, n):
        a = plate[i]
        subs = sub_table.get(a, no_sub)
        last = i == n - 1
        if last and start == m:
            left = prev[0] + drop_last
        elif province_start and i == 0:
            left = prev[0] + PROVINCE_MISSING
        else:
            left = prev[0] + other
        cur = [left]
        best = left
        for j in columns:
            b = read[j - 1]
            diagonal = prev[j - 1 - start]
            if a != b:
                if province_start and i == 0 and j == 1 and not b.isascii():
                    diagonal += PROVINCE
                else:
                    diagonal += subs.get(b, other)
            up = prev[j - start] + (drop_last if last and j == m else other)
            if up < diagonal:
                diagonal = up
            left += extra_last if last and j == m else other
            if left > diagonal:
                left = diagonal
            cur.append(left)
            if left < best:
                best = left
        if best > limit:
            return math.inf
        prev = cur
    total = prev[-1]
    return math.inf if total > limit else total


def score_of(total: float) -> float:
    """The 0..1 score of an alignment cost (0 beyond ``MAX_COST``)."""
    if total > MAX_COST:
        return 0.0
    return round(math.exp(-total / 2.0), 6)


def score(read: str, plate: str) -> float:
    """How likely (0..1) the car with ``plate`` is the one the camera read as ``read``."""
    return score_of(cost(normalize(read), normalize(plate), MAX_COST))


def _index_keys(key: str) -> set[str]:
    """The index keys of a plate's tail: itself, and each deletion tagged with its position."""
    return {key} | {f"{key[:i]}{key[i + 1 :]}|{i}" for i in range(len(key))}


def _query_keys(key: str) -> list[str]:
    """The index keys that find every plate within one edit of a read's tail."""
    deleted = [key[:i] + key[i + 1 :] for i in range(len(key))]
    return [
        key,  # same tail
        *deleted,  # the read has one extra character
        *(f"{variant}|{i}" for i, variant in enumerate(deleted)),  # one substitution
        *(f"{key}|{i}" for i in range(len(key) + 1)),  # the read lacks one character
    ]


class PlateMatcher:
    """The plates of the cars inside one lot, indexed for misread-aware matching."""

    def __init__(self, plates: Iterable[str] = (), *, indexed: bool = True) -> None:
        """Hold ``plates`` (as given; their order breaks ties); ``indexed`` for repeated queries."""
        self._indexed = indexed
        self._seq = 0
        self._count = 0
        self._entries: dict[str, list[tuple[int, str]]] = {}
        self._index: dict[str, set[str]] = {}
        self._tails: list[str] = []
        self._normals: list[str] = []
        self._position: dict[str, int] = {}
        for plate in plates:
            self.add(plate)

    def __len__(self) -> int:
        """How many plates (duplicates counted) are inside."""
        return self._count

    def __contains__(self, plate: object) -> bool:
        """Whether a car with this plate (normalised) is inside."""
        return isinstance(plate, str) and normalize(plate) in self._entries

    def add(self, plate: str) -> None:
        """A car with ``plate`` entered."""
        normal = normalize(plate)
        self._seq += 1
        self._count += 1
        entries = self._entries.get(normal)
        if entries is not None:
            entries.append((self._seq, plate))
            return
        self._entries[normal] = [(self._seq, plate)]
        key = tail(normal)
        if self._indexed:
            index = self._index
            for variant in _index_keys(key):
                bucket = index.get(variant)
                if bucket is None:
                    index[variant] = {normal}
                else:
                    bucket.add(normal)
        self._position[normal] = len(self._tails)
        self._tails.append(key)
        self._normals.append(normal)

    def remove(self, plate: str) -> None:
        """A car with ``plate`` left (that text, else the earliest alike); KeyError if none."""
        normal = normalize(plate)
        entries = self._entries.get(normal)
        if not entries:
            raise KeyError(plate)
        exact = [index for index, (_, given) in enumerate(entries) if given == plate]
        del entries[exact[0] if exact else 0]
        self._count -= 1
        if entries:
            return
        del self._entries[normal]
        if self._indexed:
            for variant in _index_keys(tail(normal)):
                bucket = self._index[variant]
                bucket.discard(normal)
                if not bucket:
                    del self._index[variant]
        position = self._position.pop(normal)
        last_tail, last_normal = self._tails.pop(), self._normals.pop()
        if position < len(self._tails):
            self._tails[position] = last_tail
            self._normals[position] = last_normal
            self._position[last_normal] = position

    def match(self, plate: str, k: int = DEFAULT_K) -> list[tuple[str, float]]:
        """The (plate as given, score) of at most ``k`` cars most likely read as ``plate``."""
        if k < 1:
            return []
        read = normalize(plate)
        costs: dict[str, float] = {}
        if len(self._entries) <= SCAN_LIMIT:
            self._rescore(read, self._entries, costs, k, math.inf)
        elif not self._indexed:
            self._rescore(read, self._scan(tail(read)), costs, k, MAX_COST)
        else:
            key = tail(read)
            shortlist: set[str] = set()
            for variant in _query_keys(key):
                found = self._index.get(variant)
                if found:
                    shortlist |= found
            self._rescore(read, shortlist, costs, k, CLOSE_COST)
            if not costs or min(costs.values()) > CONFIDENT_COST:
                self._rescore(read, self._scan(key), costs, k, MAX_COST)
        ranked = sorted(
            (-score_of(total), seq, given)
            for normal, total in costs.items()
            for seq, given in self._entries[normal]
        )
        return [(given, -negative) for negative, _, given in ranked[:k]]

    def _scan(self, key: str) -> list[str]:
        """Every plate whose tail is within Levenshtein distance 2 of ``key``."""
        found = process.extract(
            key, self._tails, scorer=Levenshtein.distance, score_cutoff=2, limit=None
        )
        return [self._normals[index] for _, _, index in found]

    def _rescore(
        self, read: str, normals: Iterable[str], costs: dict[str, float], k: int, ceiling: float
    ) -> None:
        """Add to ``costs`` the ``normals`` within ``ceiling`` that may reach the top k."""
        limit = ceiling
        if len(costs) >= k:
            limit = min(limit, sorted(costs.values())[k - 1])
        for normal in normals:
            if normal in costs:
                continue
            total = cost(read, normal, limit)
            if total <= limit:
                costs[normal] = total
                if len(costs) >= k:
                    limit = min(limit, sorted(costs.values())[k - 1])


def match_from_json(value: Any) -> dict[str, Any]:
    """The contract's ``plates match``: ``{"plate", "candidates", "k"}`` → ``{"matches"}``."""
    query: Mapping[str, Any] = obj(value, "")
    read = string(require(query, "plate"), "plate")
    raw = require(query, "candidates")
    if not isinstance(raw, list):
        raise BadInput("candidates", "must be a list of plates")
    candidates: Sequence[Any] = raw
    for index, candidate in enumerate(candidates):
        string(candidate, join("candidates", index))
    k = integer(query["k"], "k", minimum=1) if "k" in query else DEFAULT_K
    matcher = PlateMatcher(candidates, indexed=False)
    return {"matches": [{"plate": p, "score": s} for p, s in matcher.match(read, k)]}
