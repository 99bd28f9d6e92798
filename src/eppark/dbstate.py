"""Is the database reachable? Telling an outage from a bug, and saying so once per change.

A long-running process (the gateway, the device ingress) meets a database
outage as a stream of errors, one per statement it tries. ``unreachable``
tells those (the server is down, restarting, or no pooled connection came in
time) from errors of our own making; ``DatabaseState`` logs one line when the
database goes away and one when it is back, instead of a traceback per try.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from django.db import connection
from django.db.utils import InterfaceError, OperationalError

UNREACHABLE: tuple[type[BaseException], ...] = (
    OperationalError,  # Django's wrapper: connection refused, server closed it, pool timeout
    InterfaceError,  # "connection already closed"
    psycopg.OperationalError,  # raised outside Django's wrapper (the NOTIFY listener)
    psycopg.InterfaceError,
)


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` (or one it came from) means the database could not be reached."""
    seen: BaseException | None = error
    for _ in range(5):  # the chain of causes, not for ever
        if seen is None:
            return False
        if isinstance(seen, UNREACHABLE):
            return True
        if isinstance(seen, BaseExceptionGroup):
            return any(unreachable(inner) for inner in seen.exceptions)
        seen = seen.__cause__ or seen.__context__
    return False


def drop_connection() -> None:
    """Give up this thread's connection (it may be broken); the next use opens a fresh one."""
    try:
        connection.close()
    except Exception:  # closing a dead connection can fail too; it is gone either way
        connection.connection = None


class DatabaseState:
    """Up or down, as last seen by ``who``; logs only the changes (thread-safe)."""

    def __init__(self, who: str, log: logging.Logger) -> None:
        self.who = who
        self.log = log
        self.down_since: float | None = None
        self._lock = threading.Lock()

    @property
    def up(self) -> bool:
        """Whether the last database call succeeded."""
        return self.down_since is None

    def failed(self, error: BaseException, *, holding: str = "") -> None:
        """A call could not reach the database: log it if it was up until now."""
        with self._lock:
            if self.down_since is not None:
                return
            self.down_since = time.monotonic()
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        self.log.warning(
            "%s: database unreachable (%s: %s)%s",
            self.who,
            type(error).__name__,
            first_line,
            f"; {holding}" if holding else "",
        )

    def succeeded(self, *, note: str = "") -> None:
        """A call reached the database: log it if it was down until now."""
        with self._lock:
            since = self.down_since
            if since is None:
                return
            self.down_since = None
        self.log.warning(
            "%s: database back after %.1f s%s",
            self.who,
            time.monotonic() - since,
            f"; {note}" if note else "",
        )
