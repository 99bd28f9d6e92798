"""``eppark serve``: web server, device endpoints and the MQTT gateway.

One process by default. ``--workers N`` (PostgreSQL only) runs N web
processes on one shared socket: this one also runs the gateway (and the
embedded broker), the others hand their robot commands over by ``NOTIFY``.
``--no-gateway`` leaves the gateway to ``eppark gateway``, a process of its
own (its work then never competes with the web for one interpreter);
``--no-payments`` leaves the payments worker to ``eppark payments``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from eppark.devices.credentials import gateway_password
from eppark.operations.runtime import async_serve, listen


class Command(BaseCommand):
    """Serve EP Park: HTTP, the gateway, and the embedded broker when MQTT_URL is unset."""

    help = "Run the web server, device endpoints and gateway (embedded MQTT broker by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        """--host, --port, --workers."""
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on")
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("EPPARK_WEB_WORKERS", "1")),
            help="web processes sharing the port (PostgreSQL only; default 1)",
        )
        parser.add_argument(
            "--no-gateway",
            action="store_true",
            help="web only: `eppark gateway` runs the gateway (PostgreSQL only)",
        )
        parser.add_argument(
            "--no-payments",
            action="store_true",
            help="no payments worker here: `eppark payments` runs it",
        )
        parser.add_argument("--fd", type=int, help=argparse_suppress())

    def handle(self, *args: Any, **options: Any) -> None:
        """Run until interrupted."""
        host, port, workers = options["host"], options["port"], options["workers"]
        if options["fd"] is not None:  # a web-only worker started by the main process
            _end_with_parent()
            sock = socket.socket(fileno=options["fd"])
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(async_serve(host, port, sock=sock, gateway=False))
            return
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        gateway = not options["no_gateway"]
        if (workers > 1 or not gateway) and connection.vendor != "postgresql":
            raise CommandError(
                "--workers > 1 and --no-gateway need PostgreSQL (web processes reach the "
                "gateway by NOTIFY); SQLite serves with one process"
            )
        if gateway:
            gateway_password()  # a missing broker password fails before anything listens
        sock = listen(host, port)
        children = [_worker(sock, host, port) for _ in range(workers - 1)]
        self.stdout.write(f"Serving on http://{host}:{port}/ ({workers} web process(es))")
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(
                    async_serve(
                        host,
                        port,
                        sock=sock,
                        gateway=gateway,
                        payments=not options["no_payments"],
                    )
                )
        finally:
            for child in children:
                child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(15)
                except subprocess.TimeoutExpired:
                    child.kill()


PARENT_ENV = "EPPARK_SERVE_PARENT"
"""The main process's id, handed to its web-only workers."""
_PR_SET_PDEATHSIG = 1


def _worker(sock: socket.socket, host: str, port: int) -> subprocess.Popen[bytes]:
    """Start a web-only worker process on the shared socket."""
    command = [sys.executable, "-m", "eppark", "serve", "--host", host, "--port", str(port)]
    env = {**os.environ, PARENT_ENV: str(os.getpid())}
    return subprocess.Popen(
        [*command, "--fd", str(sock.fileno())], pass_fds=[sock.fileno()], env=env
    )


def _end_with_parent() -> None:
    """A worker ends with the main process, even one killed outright (SIGKILL, OOM).

    The main process stops its workers when it stops; killed, it cannot, and a
    worker left behind would go on answering on the port with the old code. On
    Linux the kernel sends the worker SIGTERM when its parent dies; a parent gone
    before that was arranged means the worker stops at once.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    parent = os.environ.get(PARENT_ENV, "")
    if parent and str(os.getppid()) != parent:
        raise SystemExit(0)  # the main process died before we started


def argparse_suppress() -> str:
    """Hide an internal option from --help."""
    import argparse

    return argparse.SUPPRESS
