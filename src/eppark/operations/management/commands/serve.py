"""``eppark serve``: the web server (back office, device endpoints) in one process."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    """Serve EP Park over HTTP with uvicorn."""

    help = "Run the web server: back office and device endpoints."

    def add_arguments(self, parser: CommandParser) -> None:
        """--host and --port."""
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on")

    def handle(self, *args: Any, **options: Any) -> None:
        """Run until interrupted."""
        serve(options["host"], options["port"])


def serve(host: str, port: int) -> None:
    """Run the ASGI application until interrupted."""
    import uvicorn

    uvicorn.run(
        "eppark.asgi:application",
        host=host,
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
    )
