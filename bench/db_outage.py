"""``python -m bench db_outage``: PostgreSQL stopped 15 s under traffic (``bench.gate_loop``)."""

from __future__ import annotations

from typing import Any

from bench.gate_loop import run_db_outage

OUTAGE_S = 15.0


def run() -> list[dict[str, Any]]:
    """The database fault's figures: reads refused, late opens (0), recovery times."""
    return run_db_outage(OUTAGE_S)
