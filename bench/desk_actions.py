"""The agent's actions after the pop, per scenario of the desk (scenarios.md §2): the clicks
the browser tests count in Chromium, beside the manual's (target ≤ 2). See ``bench/desk.py``."""

from __future__ import annotations

from typing import Any

from bench.desk import scenario_actions


def run() -> list[dict[str, Any]]:
    """Run the desk's browser tests; one row per scenario."""
    return scenario_actions()
