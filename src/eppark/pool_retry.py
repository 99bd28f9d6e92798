"""How fast psycopg's pool re-makes connections after the database comes back.

psycopg_pool retries a failed connection after 1 s, then 2, 4, 8 … (with
jitter): after an outage of a minute a web process could wait many seconds for
its first connection while the database is already up. We retry every 0.5 s
instead. psycopg_pool exposes no option for this; the delays are class
attributes of ``psycopg_pool.base.AttemptWithBackoff`` (psycopg-pool 3.3, pinned
in requirements.lock). ``tests/unit/test_pool_retry.py`` fails if an upgrade
moves or ignores them.
"""

from __future__ import annotations

RETRY_EVERY_S = 0.5


def retry_steadily() -> None:
    """Make the pool retry a lost connection every ``RETRY_EVERY_S``, without backing off."""
    from psycopg_pool.base import AttemptWithBackoff

    for name in ("INITIAL_DELAY", "DELAY_BACKOFF"):
        if not hasattr(AttemptWithBackoff, name):
            raise RuntimeError(f"psycopg_pool.base.AttemptWithBackoff has no {name} any more")
    AttemptWithBackoff.INITIAL_DELAY = RETRY_EVERY_S
    AttemptWithBackoff.DELAY_BACKOFF = 1.0
