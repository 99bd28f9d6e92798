"""A camera push is decided within a few seconds of its arrival, or refused and never acted on.

A camera waits for its reply before it lifts the barrier; a reply that comes a
minute late (the database was away, pushes queued) would pulse the barrier
when the car may be gone and another there. So each push carries a deadline,
``EPPARK_PUSH_DEADLINE_S`` (3 s) after it arrived: a statement about to run
after it raises ``DeadlinePassed`` instead, which rolls back the whole
decision (visit, stay, commands), and the camera is answered 503. On any
non-200 answer the cameras we speak to keep the read: Vzenith and Hikvision
re-send it later as backlog (``isoffline`` / ``isDataRetransmission``), which
is recorded, not acted on; Dahua and HXZX re-send it; meanwhile a camera in
its offline mode decides by its own white list. Commands staged for the read
count their time-to-live from its arrival, not from when a thread took it up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connection


class DeadlinePassed(Exception):
    """The push was not decided in time: nothing of it is written."""


def push_deadline_s() -> float:
    """How long after its arrival a push may still be acted on (seconds)."""
    return float(getattr(settings, "EPPARK_PUSH_DEADLINE_S", 3.0))


@contextmanager
def statements_before(deadline: float) -> Iterator[None]:
    """Refuse, on this thread's connection, every statement of a transaction started after
    ``deadline`` (a ``time.monotonic()`` value).

    What a push acts on (visit, stay, commands, the read) is written in one transaction,
    whose last statement is followed only by its commit. Statements outside a transaction
    act on nothing (the camera's snapshot, its last heartbeat, the wake-up sent after a
    commit) and are let through: refusing the wake-up of a committed decision would answer
    503 for a read that was acted on. The check costs a clock read, no round trip.
    """

    def check(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if connection.in_atomic_block and time.monotonic() > deadline:
            raise DeadlinePassed(f"past the push deadline ({push_deadline_s():g} s)")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(check):
        yield
