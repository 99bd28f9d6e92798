"""Misread-aware plate matching (contracts.md, ``eppark plates match``)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eppark.domain import matching
from eppark.domain.errors import BadInput
from eppark.domain.matching import PlateMatcher, cost, match_from_json, score
from eppark.domain.plates import LETTERS, PROVINCES, normalize


def plates_of(result: dict[str, Any]) -> list[str]:
    return [m["plate"] for m in result["matches"]]


def run(plate: str, candidates: list[Any], **extra: Any) -> dict[str, Any]:
    return match_from_json({"plate": plate, "candidates": candidates, **extra})


@pytest.mark.parametrize(("truth_char", "read_char"), [tuple(p) for p in matching.LOOKALIKES])
@pytest.mark.parametrize("reverse", [False, True])
def test_each_lookalike_pair_is_cheap(truth_char: str, read_char: str, reverse: bool) -> None:
    if reverse:
        truth_char, read_char = read_char, truth_char
    truth = f"粤B3{truth_char}945"
    read = f"粤B3{read_char}945"
    unrelated = "粤B3W945"  # one unrelated substitution at the same place
    result = run(read, [unrelated, truth])
    assert plates_of(result) == [truth, unrelated]
    assert 0 < result["matches"][0]["score"] < 1
    assert cost(read, truth) == matching.LOOKALIKE


def test_rare_lookalikes_cost_more_than_named_ones() -> None:
    assert cost("粤BA2345", "粤B42345") == matching.LOOKALIKE_RARE
    assert matching.LOOKALIKE < matching.LOOKALIKE_RARE < matching.OTHER


def test_dropped_last_character() -> None:
    result = run("粤B1234", ["粤B12354", "粤B21345", "粤B12345"])
    assert plates_of(result)[0] == "粤B12345"
    assert cost("粤B1234", "粤B12345") == matching.DROP_LAST


def test_new_energy_plates_lose_their_eighth_character_most_easily() -> None:
    assert cost("粤BD1234", "粤BD12345") == matching.DROP_LAST_NEW_ENERGY
    assert score("粤BD1234", "粤BD12345") > score("粤B1234", "粤B12345")
    result = run("粤BD1234", ["粤BD12435", "粤BD12345"])
    assert plates_of(result)[0] == "粤BD12345"


def test_dropped_character_elsewhere_is_expensive() -> None:
    assert cost("粤B1245", "粤B12345") == matching.OTHER
    assert plates_of(run("粤B1234", ["粤B12534", "粤B12345"]))[0] == "粤B12345"


def test_extra_trailing_character() -> None:
    result = run("粤B123456", ["粤B123465", "粤B12345"])
    assert plates_of(result)[0] == "粤B12345"
    assert cost("粤B123456", "粤B12345") == matching.EXTRA_LAST
    assert cost("粤B102345", "粤B12345") == matching.OTHER


def test_wrong_province() -> None:
    result = run("湘B12345", ["粤B12346", "粤B12345"])
    assert plates_of(result) == ["粤B12345", "粤B12346"]
    assert cost("湘B12345", "粤B12345") == matching.PROVINCE


def test_missing_province() -> None:
    assert plates_of(run("B12345", ["粤B12346", "粤B12345"]))[0] == "粤B12345"
    assert cost("B12345", "粤B12345") == matching.PROVINCE_MISSING


def test_combinations_add_up() -> None:
    truth = "粤B82345"
    read = "湘BB234"  # wrong province, 8 read as B, last character dropped
    expected = matching.PROVINCE + matching.LOOKALIKE + matching.DROP_LAST
    assert cost(read, truth) == pytest.approx(expected)
    result = run(read, ["粤B92345", "粤B83245", truth, "粤B82354"])
    assert plates_of(result)[0] == truth
    assert score(read, truth) < score("湘B82345", truth) < 1
    assert score("粤BB2345", truth) > score("粤BB234", truth)


def test_two_unrelated_errors_still_resemble_but_three_do_not() -> None:
    assert 0 < score("粤B12399", "粤B12345") < score("粤B12349", "粤B12345")
    assert score("粤B12999", "粤B12345") == 0
    assert run("粤B12999", ["粤B12345"])["matches"] == [{"plate": "粤B12345", "score": 0.0}]


def test_up_to_k_candidates_are_listed_unrelated_ones_last() -> None:
    result = run("粤B12345", ["京A99999", "粤B12345", "沪C77777"])
    assert plates_of(result) == ["粤B12345", "京A99999", "沪C77777"]
    assert [m["score"] for m in result["matches"]] == [1.0, 0.0, 0.0]
    assert run("粤B12345", []) == {"matches": []}


def test_the_console_gets_six_cars_to_choose_from() -> None:
    inside = ["粤B12345", "粤B12999", "粤A88888", "湘A12345", "粤B1234S", "粤B72345", "粤B00000"]
    result = run("粤B1234", inside)
    assert len(result["matches"]) == 6
    assert plates_of(result)[0] == "粤B12345"
    scores = [m["score"] for m in result["matches"]]
    assert scores == sorted(scores, reverse=True)


def test_exact_match_scores_one_and_ranks_first() -> None:
    result = run("粤B12345", ["粤B12346", "粤B1234S", "粤b·12345"])
    assert result["matches"][0] == {"plate": "粤b·12345", "score": 1.0}
    assert all(m["score"] < 1 for m in result["matches"][1:])


def test_read_is_normalized() -> None:
    result = run("粤ｂ－12345", ["粤B12345"])
    assert result == {"matches": [{"plate": "粤B12345", "score": 1.0}]}


def test_ties_keep_input_order() -> None:
    first = run("粤B1234", ["粤B12346", "粤B12340", "粤B12349"])
    assert plates_of(first) == ["粤B12346", "粤B12340", "粤B12349"]
    assert len({m["score"] for m in first["matches"]}) == 1
    second = run("粤B1234", ["粤B12349", "粤B12340", "粤B12346"])
    assert plates_of(second) == ["粤B12349", "粤B12340", "粤B12346"]


def test_duplicates_are_listed_as_given() -> None:
    result = run("粤B12345", ["粤B12345", "粤b12345", "粤B12345"])
    assert plates_of(result) == ["粤B12345", "粤b12345", "粤B12345"]


def test_k_limits_the_list() -> None:
    candidates = [f"粤B1234{d}" for d in "0123456789"]
    assert len(run("粤B1234", candidates)["matches"]) == 6
    assert plates_of(run("粤B1234", candidates, k=3)) == candidates[:3]
    assert len(run("粤B1234", candidates, k=100)["matches"]) == 10
    assert plates_of(run("粤B12347", candidates, k=1)) == ["粤B12347"]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("粤B12345", "input"),
        (["粤B12345"], "input"),
        ({"candidates": []}, "plate"),
        ({"plate": 12345, "candidates": []}, "plate"),
        ({"plate": None, "candidates": []}, "plate"),
        ({"plate": "粤B12345"}, "candidates"),
        ({"plate": "粤B12345", "candidates": "粤B12345"}, "candidates"),
        ({"plate": "粤B12345", "candidates": {"a": "粤B12345"}}, "candidates"),
        ({"plate": "粤B12345", "candidates": [12345]}, "candidates[0]"),
        ({"plate": "粤B12345", "candidates": ["粤B1", "粤B2", None]}, "candidates[2]"),
        ({"plate": "粤B12345", "candidates": ["粤B1", ["粤B2"]]}, "candidates[1]"),
        ({"plate": "粤B12345", "candidates": [], "k": 0}, "k"),
        ({"plate": "粤B12345", "candidates": [], "k": -1}, "k"),
        ({"plate": "粤B12345", "candidates": [], "k": 1.5}, "k"),
        ({"plate": "粤B12345", "candidates": [], "k": True}, "k"),
        ({"plate": "粤B12345", "candidates": [], "k": "6"}, "k"),
        ({"plate": "粤B12345", "candidates": [], "k": None}, "k"),
    ],
)
def test_bad_input_names_the_field(value: Any, field: str) -> None:
    with pytest.raises(BadInput) as caught:
        match_from_json(value)
    assert caught.value.field == field


def test_matcher_add_and_remove() -> None:
    matcher = PlateMatcher(["粤B12345", "粤B54321"])
    assert len(matcher) == 2
    matcher.add("粤b12345")
    assert len(matcher) == 3
    matcher.remove("粤b12345")
    assert len(matcher) == 2
    assert "粤b12345" in matcher
    (plate, found), *_rest = matcher.match("粤B1234")
    assert plate == "粤B12345"
    assert found == pytest.approx(0.606531)
    matcher.remove("粤B12345")
    assert "粤B12345" not in matcher
    assert [p for p, _ in matcher.match("粤B1234")] == ["粤B54321"]
    matcher.add("粤B12345")
    assert [p for p, _ in matcher.match("粤B1234")] == ["粤B12345", "粤B54321"]
    with pytest.raises(KeyError):
        matcher.remove("粤B99999")
    assert matcher.match("粤B12345", k=0) == []


def _random_plate(rng: random.Random) -> str:
    head = "粤B" if rng.random() < 0.7 else rng.choice(PROVINCES) + rng.choice(LETTERS)
    chars = "0123456789" * 3 + LETTERS
    length = rng.choice((5, 5, 5, 6))
    return head + "".join(rng.choice(chars) for _ in range(length))


def _mutate(rng: random.Random, plate: str) -> str:
    for _ in range(rng.choice((1, 1, 2, 3))):
        roll = rng.random()
        i = rng.randrange(1, len(plate))
        if roll < 0.4:
            plate = plate[:i] + rng.choice("0123456789OIDQSZBGAU") + plate[i + 1 :]
        elif roll < 0.6:
            plate = plate[:-1]
        elif roll < 0.75:
            plate = rng.choice(PROVINCES) + plate[1:]
        elif roll < 0.9:
            plate = plate[:i] + rng.choice("0123456789ABC") + plate[i:]
        else:
            plate = plate[1:]
    return plate


def _brute_force(read: str, plates: list[str], k: int) -> list[tuple[str, float]]:
    """The contract's ranking computed the slow way, over every plate."""
    read = normalize(read)
    totals = [(cost(read, normalize(p)), i, p) for i, p in enumerate(plates)]
    # lots above SCAN_LIMIT list only resembling cars, and only close ones beside a confident one
    totals = [t for t in totals if t[0] <= matching.MAX_COST]
    if totals and min(t[0] for t in totals) <= matching.CONFIDENT_COST:
        totals = [t for t in totals if t[0] <= matching.CLOSE_COST]
    ranked = sorted((-matching.score_of(c), i, p) for c, i, p in totals)
    return [(p, -s) for s, _, p in ranked[:k]]


def test_large_lots_match_brute_force() -> None:
    rng = random.Random(7)
    plates = list(dict.fromkeys(_random_plate(rng) for _ in range(3 * matching.SCAN_LIMIT)))
    indexed = PlateMatcher(plates)
    scanned = PlateMatcher(plates, indexed=False)
    for _ in range(60):
        read = _mutate(rng, rng.choice(plates))
        expected = _brute_force(read, plates, 6)
        assert indexed.match(read, 6) == expected, read
        assert scanned.match(read, 6) == expected, read
        assert indexed.match(read, 1) == expected[:1], read


def test_indexed_lot_after_removals_matches_brute_force() -> None:
    rng = random.Random(11)
    plates = list(dict.fromkeys(_random_plate(rng) for _ in range(3 * matching.SCAN_LIMIT)))
    matcher = PlateMatcher(plates)
    for plate in plates[::3]:
        matcher.remove(plate)
    inside = [p for i, p in enumerate(plates) if i % 3]
    for _ in range(40):
        read = _mutate(rng, rng.choice(plates))
        assert matcher.match(read) == _brute_force(read, inside, 6), read


_plate_text = st.text(alphabet="粤湘京B12345678OD0SZGI·- ", max_size=9)


@settings(max_examples=200)
@given(_plate_text, st.lists(_plate_text, max_size=12), st.integers(min_value=1, max_value=8))
def test_match_properties(read: str, candidates: list[str], k: int) -> None:
    matches = run(read, candidates, k=k)["matches"]
    assert len(matches) <= k
    listed = [m["plate"] for m in matches]
    assert all(p in candidates for p in listed)
    scores = [m["score"] for m in matches]
    assert all(0 <= s <= 1 for s in scores)
    assert scores == sorted(scores, reverse=True)
    if normalize(read) in {normalize(c) for c in candidates}:
        assert scores[0] == 1.0


@given(_plate_text, _plate_text)
def test_score_is_one_exactly_for_equal_normal_forms(read: str, plate: str) -> None:
    assert (score(read, plate) == 1.0) == (normalize(read) == normalize(plate))
