"""``eppark serve``: web server, device endpoints and the MQTT gateway in one process."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from eppark.operations.runtime import async_serve


class Command(BaseCommand):
    """Serve EP Park: HTTP, the gateway, and the embedded broker when MQTT_URL is unset."""

    help = "Run the web server, device endpoints and gateway (embedded MQTT broker by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        """--host and --port."""
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on")

    def handle(self, *args: Any, **options: Any) -> None:
        """Run until interrupted."""
        self.stdout.write(f"Serving on http://{options['host']}:{options['port']}/")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(async_serve(options["host"], options["port"]))
