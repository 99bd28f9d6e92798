"""The ``eppark`` command line as a user runs it: real process, stdin, stdout, exit status."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest

from eppark.cli import jsonio

SITUATION = {
    "now": "2026-11-27T08:00:00+08:00",
    "direction": "entry",
    "plate": "粤B12345",
    "lot": {"temp_entry_confirmation": True},
    "pass": None,
}


def eppark(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return _run(args, stdin)


def _run(args: tuple[str, ...], stdin: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "eppark", *args],
        input=stdin.encode(),
        capture_output=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LANG": "C"},  # not a UTF-8 locale on purpose
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def test_decide_prints_one_decision_in_utf8() -> None:
    done = eppark("decide", stdin=json.dumps(SITUATION, ensure_ascii=False))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["voice"] == "该停车场不允许临停车辆进场，有需请联系管理处"
    assert done.stdout.count("\n") == 1


def test_decide_bad_input_exits_2_with_one_line_naming_the_field() -> None:
    body = dict(SITUATION, now="2026-13-01T00:00:00+08:00")
    done = eppark("decide", stdin=json.dumps(body))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "now" in done.stderr
    assert "Traceback" not in done.stderr


def test_decide_jsonl_answers_in_order_skips_blanks_and_flags_bad_lines() -> None:
    lines = [
        json.dumps(SITUATION),
        "",
        "{not json",
        "   ",
        json.dumps(dict(SITUATION, plate=None)),
        json.dumps(dict(SITUATION, direction="sideways")),
    ]
    done = eppark("decide", "--jsonl", stdin="\n".join(lines) + "\n")
    assert done.returncode == 2
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a.get("scenario") for a in answers] == [
        "entry.temp_forbidden",
        None,
        "entry.unplated",
        None,
    ]
    assert "error" in answers[1]
    assert answers[3]["error"].startswith("direction")
    assert "Traceback" not in done.stderr


def test_jsonl_all_good_exits_0() -> None:
    done = eppark("decide", "--jsonl", stdin=json.dumps(SITUATION) + "\n" + json.dumps(SITUATION))
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 2


@pytest.mark.parametrize(
    ("stdin", "needle"),
    [
        ("", "empty"),
        ("[1, 2]", "input"),
        ('{"now": NaN}', "JSON"),
        ('{"now": "a", "now": "b"}', "duplicate"),
        ("\xff", "JSON"),
    ],
)
def test_unreadable_input_is_refused(stdin: str, needle: str) -> None:
    done = eppark("decide", stdin=stdin)
    assert done.returncode == 2
    assert needle in done.stderr
    assert "Traceback" not in done.stderr


def test_invalid_utf8_bytes_are_refused() -> None:
    out, err = io.StringIO(), io.StringIO()
    status = jsonio.run_one(lambda v: {}, io.BytesIO(b'{"plate": "\xff"}'), out, err)
    assert status == 2
    assert "UTF-8" in err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    status = jsonio.run_lines(lambda v: {"ok": v}, io.BytesIO(b'"\xff"\n"a"\n'), out, err)
    assert status == 2
    assert [json.loads(x) for x in out.getvalue().splitlines()][1] == {"ok": "a"}


def test_plates_check_without_argument_is_a_usage_error() -> None:
    done = eppark("plates", "check")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_unknown_command_is_a_usage_error() -> None:
    assert eppark("teleport").returncode == 2


def test_scenarios_prints_every_scenario() -> None:
    done = eppark("scenarios")
    assert done.returncode == 0, done.stderr
    for scenario_id in ("entry.unplated", "exit.monthly_expired_grace", "exit.no_entry_record"):
        assert scenario_id in done.stdout
    assert "欢迎回家" in done.stdout


def test_loads_rejects_infinity() -> None:
    with pytest.raises(Exception, match="JSON"):
        jsonio.loads('{"a": Infinity}')


def _echo(value: Any) -> dict[str, Any]:
    return {"echo": value}


def test_run_one_echo_roundtrip() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert jsonio.run_one(_echo, io.BytesIO('{"p": "粤B"}'.encode()), out, err) == 0
    assert json.loads(out.getvalue()) == {"echo": {"p": "粤B"}}


def test_plates_check_prints_the_contract_shape() -> None:
    done = eppark("plates", "check", "粤b·12345")
    assert done.returncode == 0
    assert json.loads(done.stdout) == {"valid": True, "plate": "粤B12345", "kind": "ordinary"}
    done = eppark("plates", "check", "")
    assert json.loads(done.stdout) == {"valid": False, "plate": "", "kind": "unknown"}


def test_plates_check_jsonl_takes_strings_or_objects() -> None:
    lines = ['"粤BD12345"', '{"plate": "使123456"}', "42", '"ABC"']
    done = eppark("plates", "check", "--jsonl", stdin="\n".join(lines))
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert answers[0]["kind"] == "new_energy"
    assert answers[1]["kind"] == "embassy"
    assert "error" in answers[2]
    assert answers[3] == {"valid": False, "plate": "ABC", "kind": "unknown"}
    assert done.returncode == 2


def test_plates_match_ranks_the_misread_car_first() -> None:
    query = {"plate": "粤B1234", "candidates": ["京A99999", "粤B12345"], "k": 1}
    done = eppark("plates", "match", stdin=json.dumps(query, ensure_ascii=False))
    assert done.returncode == 0
    assert [m["plate"] for m in json.loads(done.stdout)["matches"]] == ["粤B12345"]
    done = eppark("plates", "match", stdin=json.dumps({"plate": "粤B1", "candidates": [1]}))
    assert done.returncode == 2
    assert "candidates[0]" in done.stderr


def eppark_unconfigured(*args: str, var_dir: str) -> subprocess.CompletedProcess[str]:
    """``eppark`` with no secret key anywhere (no variable, no demo key in the var dir)."""
    done = subprocess.run(
        [sys.executable, "-m", "eppark", *args],
        capture_output=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "EPPARK_VAR_DIR": var_dir},
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def test_unknown_command_says_so_even_with_no_secret_key(tmp_path: Any) -> None:
    done = eppark_unconfigured("teleport", var_dir=str(tmp_path))
    assert done.returncode == 2
    assert "unknown command 'teleport'" in done.stderr
    assert "SECRET_KEY" not in done.stderr


def test_a_known_command_with_no_secret_key_is_a_one_line_configuration_error(
    tmp_path: Any,
) -> None:
    done = eppark_unconfigured("robot-state", "EP-0001", var_dir=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith("eppark: configuration error: EPPARK_SECRET_KEY is not set")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_plates_check_of_an_invalid_plate_exits_0_and_its_help_says_why() -> None:
    done = eppark("plates", "check", "粤B1234")
    assert done.returncode == 0
    assert json.loads(done.stdout) == {"valid": False, "plate": "粤B1234", "kind": "unknown"}
    helped = eppark("plates", "check", "--help")
    assert helped.returncode == 0
    assert "An invalid plate is an answer, not an error" in " ".join(helped.stdout.split())
