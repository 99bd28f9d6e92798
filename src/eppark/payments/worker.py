"""The payments worker: the payment work that the web and the gateway must not wait on.

Every ``EPPARK_PAYMENTS_POLL_S`` (0.3 s) it

- takes each due payment code one step further (``codepay.run_due``: charge,
  poll a USERPAYING one, query after an error, reverse) — the provider HTTP
  calls happen here, never on the gateway's event loop;
- sends the sandbox's due notifications (``eppark.payments.delivery.deliver_due``:
  the sandbox plays the provider, which calls back the project; nothing to do
  when real providers are configured);

and every ``EPPARK_PAYMENTS_JOBS_S`` (30 s) runs the book-keeping jobs
(``eppark.payments.jobs``: stuck paying orders, expired orders, the daily
reconciliation).

It runs inside ``eppark serve`` (a task next to the gateway) and as ``eppark
payments``, a process of its own. Two workers at once are harmless: each code
payment step is claimed first. The database work and the provider calls run on
one thread of the worker's own; a failing step is logged and never stops the
loop; a database outage is logged once and waited out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from eppark.dbstate import DatabaseState, drop_connection, unreachable
from eppark.payments import codepay, jobs
from eppark.payments.delivery import deliver_due

log = logging.getLogger(__name__)


def poll_interval() -> float:
    """Seconds between two rounds of the loop."""
    return float(getattr(settings, "EPPARK_PAYMENTS_POLL_S", 0.3))


def jobs_interval() -> float:
    """Seconds between two rounds of the book-keeping jobs."""
    return float(getattr(settings, "EPPARK_PAYMENTS_JOBS_S", 30))


def _close_connection() -> None:
    connection.close()  # looked up in the calling thread: connections are per thread


class PaymentsWorker:
    """The loop; ``tick`` is one round of it (synchronous, on the worker's thread)."""

    def __init__(
        self,
        *,
        interval: float | None = None,
        jobs_every: float | None = None,
        clock: Callable[[], datetime] = timezone.now,
    ) -> None:
        self.interval = poll_interval() if interval is None else interval
        self.jobs_every = jobs_interval() if jobs_every is None else jobs_every
        self.clock = clock
        self.rounds = 0
        self.database = DatabaseState("payments worker", log)
        self._next_jobs = 0.0  # monotonic time of the next jobs round (at once on start)

    def tick(self) -> None:
        """One round: due code payments, the sandbox's notifications, the jobs when due."""
        close_old_connections()
        self._guarded("code payments", lambda: codepay.run_due(self.clock()))
        self._guarded("sandbox notifications", lambda: deliver_due(self.clock()))
        if time.monotonic() >= self._next_jobs:
            self._next_jobs = time.monotonic() + self.jobs_every
            self._guarded("jobs", lambda: jobs.run(self.clock()))
        self.rounds += 1

    def _guarded(self, what: str, work: Callable[[], Any]) -> None:
        try:
            work()
        except Exception as error:
            drop_connection()  # it may be broken: the next round opens a fresh one
            if unreachable(error):
                self.database.failed(error, holding="payments wait until it is back")
                return
            log.exception("payments worker: %s failed", what)
            return
        self.database.succeeded()

    async def run(self) -> None:
        """Run until cancelled; the thread in flight finishes its round, then stops."""
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(1, thread_name_prefix="payments")
        try:
            while True:
                round_ = loop.run_in_executor(executor, self.tick)
                try:
                    await asyncio.shield(round_)
                except asyncio.CancelledError:
                    with contextlib.suppress(Exception):
                        await round_  # a provider call in flight: let it end, then stop
                    raise
                await asyncio.sleep(self.interval)
        finally:
            with contextlib.suppress(Exception):
                await loop.run_in_executor(executor, _close_connection)
            executor.shutdown(wait=True)
