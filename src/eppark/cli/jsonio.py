"""JSON in, JSON out, as the contract says: one object, or one per line with ``--jsonl``.

A bad input exits with status 2 and a one-line error naming the field; with
``--jsonl`` a bad line answers ``{"error": "…"}`` in its place and the rest go on.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import IO, Any

from eppark.domain.errors import BadInput

EXIT_OK = 0
EXIT_BAD_INPUT = 2

Handler = Callable[[Any], dict[str, Any]]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads(text: str) -> Any:
    """Parse strict JSON (no NaN/Infinity, no duplicate keys); ``BadInput`` otherwise."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise BadInput("input", f"not valid JSON ({exc})") from None


def dumps(value: Any) -> str:
    """One line of UTF-8 JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _read_text(stream: IO[bytes]) -> str:
    data = stream.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput("input", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None


def _answer(handler: Handler, text: str) -> dict[str, Any]:
    return handler(loads(text))


def run_one(handler: Handler, stdin: IO[bytes], stdout: IO[str], stderr: IO[str]) -> int:
    """Answer one JSON object read from ``stdin``."""
    try:
        text = _read_text(stdin)
        if not text.strip():
            raise BadInput("input", "empty: expected one JSON object")
        result = _answer(handler, text)
    except BadInput as exc:
        stderr.write(f"error: {_one_line(str(exc))}\n")
        return EXIT_BAD_INPUT
    stdout.write(dumps(result) + "\n")
    return EXIT_OK


def run_lines(handler: Handler, stdin: IO[bytes], stdout: IO[str], stderr: IO[str]) -> int:
    """Answer each non-blank line of ``stdin`` in order; exit 2 if any line was bad."""
    status = EXIT_OK
    for number, raw in enumerate(stdin, start=1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            line, error = "", f"input: not UTF-8 ({exc.reason} at byte {exc.start})"
        else:
            error = ""
        if not error and not line.strip():
            continue
        try:
            if error:
                raise BadInput("", error)
            stdout.write(dumps(_answer(handler, line)) + "\n")
        except BadInput as exc:
            status = EXIT_BAD_INPUT
            message = _one_line(str(exc))
            stdout.write(dumps({"error": message}) + "\n")
            stderr.write(f"error: line {number}: {message}\n")
        stdout.flush()
    return status


def _one_line(message: str) -> str:
    return " ".join(message.split())


def run(handler: Handler, *, jsonl: bool) -> int:
    """Run ``handler`` over the process's standard streams."""
    runner = run_lines if jsonl else run_one
    return runner(handler, sys.stdin.buffer, sys.stdout, sys.stderr)
