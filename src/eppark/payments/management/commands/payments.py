"""``eppark payments``: the payments worker as a process of its own.

For ``eppark serve --no-payments`` set-ups: it charges the
payment codes robots read, polls and reverses them, sends the sandbox's
notifications, and runs the book-keeping jobs (``eppark.payments.worker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from eppark.operations.runtime import async_payments


class Command(BaseCommand):
    """Run the payments worker until stopped."""

    help = (
        "Run the payments worker (payment codes, sandbox notifications, stuck and expired "
        "orders, daily reconciliation) for web processes run with --no-payments."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        """Run until SIGINT or SIGTERM."""
        if connection.vendor != "postgresql":
            raise CommandError(
                "a payments process of its own needs PostgreSQL (SQLite: `eppark serve` runs it)"
            )
        self.stdout.write("Payments worker running")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_until_stopped())


async def _until_stopped() -> None:
    task = asyncio.create_task(async_payments())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
