"""The pool retries a lost connection at a steady pace (see eppark.pool_retry)."""

from __future__ import annotations

from psycopg_pool.base import AttemptWithBackoff

from eppark.pool_retry import RETRY_EVERY_S, retry_steadily


def test_after_the_first_try_the_pool_waits_the_same_short_time_again_and_again() -> None:
    retry_steadily()
    attempt = AttemptWithBackoff(timeout=60)
    delays = []
    for now in (0.0, 1.0, 2.0, 3.0, 4.0):
        attempt.update_delay(now)
        delays.append(attempt.delay)
    jitter = 0.1 * RETRY_EVERY_S
    assert all(RETRY_EVERY_S - jitter <= d <= RETRY_EVERY_S + jitter for d in delays), delays
