"""``eppark demo``: migrate, provision the demo city, serve it with simulated robots and traffic."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from eppark.demo import print_scenarios
from eppark.devices.credentials import gateway_password
from eppark.devices.models import Robot
from eppark.lots.models import Lot
from eppark.operations.demo_setup import (
    DEMO_LOGINS,
    DEMO_PASSWORD,
    DEMO_USER,
    demo_robot_passwords,
    foreign_data,
    set_up_demo,
)
from eppark.operations.runtime import async_serve, mqtt_url
from eppark.passes.models import MonthlyPass
from eppark.provisioning.demo_city import AN_AGENT, DEMO_CALL_PORT, demo_call_centre
from eppark.sim.callcentre import SimCallCentre, signed_in_seats
from eppark.sim.drivers import Drivers, keep_books
from eppark.sim.ezviz import demo_platform
from eppark.sim.robot import SimRobot
from eppark.sim.traffic import Traffic


class Command(BaseCommand):
    """Set up the demo city on the embedded defaults and run it."""

    help = "Migrate, provision a demo city of Shenzhen lots, print the URLs and login, run it."

    def add_arguments(self, parser: CommandParser) -> None:
        """--host, --port, --interval between cars, and --no-serve for set-up only."""
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--interval", type=float, default=6.0, help="mean seconds between arriving cars"
        )
        parser.add_argument("--no-serve", action="store_true", help="set up, print, and exit")
        parser.add_argument(
            "--force",
            action="store_true",
            help="set the demo up even in a database that is not the demo's own "
            "(DATABASE_URL set, or real users/lots): plants logins with a published password",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Set up, then serve until interrupted."""
        out = self.stdout
        if not options["force"]:
            _refuse_a_database_not_its_own()
        out.write("Migrating the database…")
        call_command("migrate", verbosity=0, interactive=False)
        summary = set_up_demo(timezone.now())
        out.write("")
        print_scenarios(sys.stdout)
        base = f"http://{options['host']}:{options['port']}"
        settings.EPPARK_PUBLIC_URL = base  # the robots' QR codes point at this server
        out.write("")
        out.write(
            f"Demo city: {Lot.objects.count()} lots, {Robot.objects.count()} robots, "
            f"{MonthlyPass.objects.count()} monthly passes "
            f"({'updated' if summary.changed else 'unchanged'})."
        )
        out.write(f"Back office:  {base}/admin/")
        out.write(f"City:         {base}/console/city/")
        out.write(f"Held-up cars: {base}/console/congestion/")
        first = Robot.objects.order_by("lot__code", "code").first()
        if first is not None:
            out.write(f"A robot:      {base}/console/robots/{first.code}/")
        for index, (username, role) in enumerate(DEMO_LOGINS):
            label = "Login:" if index == 0 else ""
            out.write(f"{label:<14}{username} / {DEMO_PASSWORD}  ({role})")
        log_path = Path(settings.VAR_DIR) / "sim-robots.jsonl"
        out.write(f"MQTT broker:  {mqtt_url()} (robots' commands logged to {log_path})")
        drivers_log = log_path.with_name("sim-drivers.jsonl")
        out.write(f"Drivers:      scan, pay, show payment codes or do nothing ({drivers_log})")
        calls_log = log_path.with_name("sim-calls.jsonl")
        out.write(
            f"Call centre:  call buttons ring at signed-in agents' seats; callouts answered on "
            f"port {DEMO_CALL_PORT} ({calls_log})"
        )
        out.write(f"Agent desk:   {base}/console/  ({AN_AGENT} / {DEMO_PASSWORD})")
        if options["no_serve"]:
            return
        out.write("Serving with simulated robots and traffic; press Ctrl+C to stop.")
        # the environment cameras' snapshots come from a stand-in Ezviz platform (sim/ezviz.py)
        with contextlib.suppress(KeyboardInterrupt), demo_platform() as ezviz:
            if ezviz is not None:
                out.write(f"Ezviz:        {ezviz.base_url} (stand-in for the environment cameras)")
            passwords = demo_robot_passwords()
            asyncio.run(
                _run(options["host"], options["port"], options["interval"], log_path, passwords)
            )


def _refuse_a_database_not_its_own() -> None:
    """The demo plants logins with a published password: only into its own database."""
    if os.environ.get("DATABASE_URL"):
        raise CommandError(
            "DATABASE_URL is set: the demo runs on its own SQLite database under the var dir "
            f"and plants logins with a published password ({DEMO_USER} / {DEMO_PASSWORD}); "
            "unset DATABASE_URL, or pass --force to set the demo up in that database anyway"
        )
    foreign = foreign_data(timezone.now())
    if foreign:
        raise CommandError(
            f"this database is not the demo's: it holds {', '.join(foreign)}; the demo would "
            f"plant logins with a published password ({DEMO_USER} / {DEMO_PASSWORD}) in it. "
            "Point EPPARK_VAR_DIR at another folder, or pass --force to set the demo up anyway"
        )


async def _run(
    host: str, port: int, interval: float, log_path: Path, passwords: dict[str, str]
) -> None:
    url = mqtt_url()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    drivers_path = log_path.with_name("sim-drivers.jsonl")
    calls_path = log_path.with_name("sim-calls.jsonl")
    with (
        log_path.open("a", encoding="utf-8", buffering=1) as log,
        drivers_path.open("a", encoding="utf-8", buffering=1) as drivers_log,
        calls_path.open("a", encoding="utf-8", buffering=1) as calls_log,
    ):
        robots = {code: SimRobot(code, pw, url, out=log) for code, pw in passwords.items()}
        # the drivers scan and pay, show payment codes, or do nothing (one JSON line each)
        drivers = Drivers(out=drivers_log)
        traffic = Traffic(f"http://{host}:{port}", robots, interval=interval, drivers=drivers)
        tasks = [robot.run for robot in robots.values()]
        # the back office's daily reconciliation, kept up to date as the drivers pay
        base = f"http://{host}:{port}"

        async def prepaying() -> None:  # drivers paying inside the lot before leaving (场内预付)
            await drivers.prepay_forever(base)

        # the call centre: robots' call buttons ring at agents' seats; agents' callouts connect
        centre = demo_call_centre()
        calls = SimCallCentre(
            base,
            centre["key"],
            secret=centre["secret"],
            seats=signed_in_seats,
            mqtt_url=url,
            mqtt_password=gateway_password(),
            port=DEMO_CALL_PORT,
            out=calls_log,
        )

        async def call_centre() -> None:
            try:
                await calls.run()
            except OSError as error:  # the port is taken: the demo goes on without calls
                sys.stderr.write(f"simulated call centre not started: {error}\n")

        await async_serve(
            host, port, extra=[*tasks, traffic.run, keep_books, prepaying, call_centre]
        )
