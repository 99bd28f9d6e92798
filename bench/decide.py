"""Gate decisions per second, in process, beside the CLI a script would call.

Figures: the typed engine (``decide(Situation)``, what the gate loop calls),
the JSON contract path (parse + decide + serialise, what ``--jsonl`` does per
line), a real ``eppark decide --jsonl`` process fed a stream, and the named
baseline: one ``eppark decide`` process per decision.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from datetime import datetime, timedelta
from typing import Any

from eppark.domain.decide import decide, decide_from_json, parse_situation

NOW = datetime.fromisoformat("2026-11-27T08:00:00+08:00")


def situations(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """A mix of entry and exit situations touching every rule."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        direction = rng.choice(["entry", "exit"])
        body: dict[str, Any] = {
            "now": NOW.isoformat(),
            "direction": direction,
            "plate": rng.choice([None, "粤B12345", "粤BD12345", "湘A8K2M9"]),
            "lot": {"temp_entry_confirmation": rng.random() < 0.5},
            "pass": None,
        }
        if rng.random() < 0.6:
            until = NOW + timedelta(hours=rng.randint(-24 * 12, 24 * 30))
            body["pass"] = {
                "valid_from": "2026-01-01T00:00:00+08:00",
                "valid_until": until.isoformat(),
                "spaces": rng.randint(1, 3),
                "group_in_lot": rng.randint(0, 3),
            }
        if direction == "exit":
            body["session"] = (
                None
                if rng.random() < 0.2
                else {"as": rng.choice(["pass", "temp"]), "due": rng.choice([0, 0, 500, 1100])}
            )
        out.append(body)
    return out


def _rate(fn: Any, items: list[Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return len(items) / best


def run(count: int = 50_000) -> list[dict[str, Any]]:
    """Decisions per second by each path."""
    bodies = situations(count)
    typed = [parse_situation(b) for b in bodies]
    lines = [json.dumps(b, ensure_ascii=False) for b in bodies]
    rows = [
        {"case": "engine, typed situation", "value": _rate(decide, typed)},
        {
            "case": "engine, JSON in/out",
            "value": _rate(
                lambda line: json.dumps(decide_from_json(json.loads(line)), ensure_ascii=False),
                lines,
            ),
        },
    ]
    stream = "\n".join(lines[:20_000]) + "\n"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "eppark", "decide", "--jsonl"],
        input=stream.encode(),
        capture_output=True,
        check=True,
    )
    rows.append(
        {
            "case": "eppark decide --jsonl process (20k lines)",
            "value": 20_000 / (time.perf_counter() - start),
        }
    )
    per_call = 20
    start = time.perf_counter()
    for line in lines[:per_call]:
        subprocess.run(
            [sys.executable, "-m", "eppark", "decide"],
            input=line.encode(),
            capture_output=True,
            check=True,
        )
    rows.append(
        {
            "case": "baseline: one eppark decide process per decision",
            "value": per_call / (time.perf_counter() - start),
        }
    )
    for row in rows:
        row.update(bench="decide", unit="decisions/s")
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row['case']:<50} {row['value']:>12,.0f} {row['unit']}")
