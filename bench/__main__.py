"""``make bench``: run every benchmark and print its figures beside their baselines."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
from typing import Any

SUITES = ("decide", "fees", "plates", "gate_loop", "db_outage", "payments", "desk", "desk_actions")


def _table(rows: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys and k != "bench"]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(k, "")) for k in keys) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.0f}"
    return str(value)


def main() -> int:
    """Run the chosen suites (all by default)."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("suites", nargs="*", metavar="SUITE", help=f"any of {', '.join(SUITES)}")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of tables")
    args = parser.parse_args()
    unknown = set(args.suites) - set(SUITES)
    if unknown:
        parser.error(f"unknown suite(s): {', '.join(sorted(unknown))}")
    print(f"# EP Park benchmarks — Python {platform.python_version()}, {platform.machine()}")
    for name in args.suites or SUITES:
        module = importlib.import_module(f"bench.{name}")
        rows = module.run()
        if args.json:
            for row in rows:
                print(json.dumps(row, ensure_ascii=False))
        else:
            print(f"\n## {name}\n\n{_table(rows)}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
