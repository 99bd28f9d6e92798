"""``eppark demo``: migrate, provision the demo city, and serve it."""

from __future__ import annotations

import sys
from typing import Any

from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from eppark.demo import print_scenarios
from eppark.lots.models import Lot
from eppark.operations.management.commands.serve import serve
from eppark.passes.models import MonthlyPass
from eppark.provisioning.apply import apply_plan
from eppark.provisioning.demo_city import demo_city
from eppark.provisioning.schema import parse_plan

DEMO_USER = "demo"
DEMO_PASSWORD = "eppark-demo"


class Command(BaseCommand):
    """Set up the demo city on the embedded defaults and serve it."""

    help = "Migrate, provision a demo city of Shenzhen lots, print the URL and login, serve."

    def add_arguments(self, parser: CommandParser) -> None:
        """--host, --port, and --no-serve for set-up only."""
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-serve", action="store_true", help="set up, print, and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        """Set up, then serve until interrupted."""
        out = self.stdout
        out.write("Migrating the database…")
        call_command("migrate", verbosity=0, interactive=False)
        summary = apply_plan(parse_plan(demo_city(timezone.now())))
        _ensure_demo_login()
        out.write("")
        print_scenarios(sys.stdout)
        url = f"http://{options['host']}:{options['port']}/admin/"
        out.write("")
        out.write(
            f"Demo city: {Lot.objects.count()} lots, {MonthlyPass.objects.count()} monthly "
            f"passes ({'updated' if summary.changed else 'unchanged'})."
        )
        out.write(f"Back office: {url}")
        out.write(f"Login:       {DEMO_USER} / {DEMO_PASSWORD}")
        if options["no_serve"]:
            return
        out.write("Serving; press Ctrl+C to stop.")
        serve(options["host"], options["port"])


def _ensure_demo_login() -> None:
    """The demo's superuser, with its known password."""
    with transaction.atomic():
        user, _created = User.objects.get_or_create(
            username=DEMO_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        if not user.check_password(DEMO_PASSWORD) or not user.is_superuser:
            user.set_password(DEMO_PASSWORD)
            user.is_staff = user.is_superuser = True
            user.save()
