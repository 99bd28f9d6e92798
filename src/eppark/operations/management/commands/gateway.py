"""``eppark gateway``: the MQTT gateway and outbox dispatcher as a process of its own.

For ``eppark serve --no-gateway`` web processes (PostgreSQL): they hand their
robot commands over by ``NOTIFY``; this process publishes them, retries until
acked or expired, and applies what robots report.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from eppark.devices.credentials import gateway_password
from eppark.operations.runtime import async_gateway


class Command(BaseCommand):
    """Run the gateway (and the embedded broker when MQTT_URL is unset) until stopped."""

    help = "Run the MQTT gateway and outbox dispatcher (for web processes run with --no-gateway)."

    def handle(self, *args: Any, **options: Any) -> None:
        """Run until SIGINT or SIGTERM."""
        if connection.vendor != "postgresql":
            raise CommandError("a gateway process of its own needs PostgreSQL (NOTIFY wakes it)")
        gateway_password()  # a missing broker password fails before anything starts
        self.stdout.write("Gateway running")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_until_stopped())


async def _until_stopped() -> None:
    task = asyncio.create_task(async_gateway())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
