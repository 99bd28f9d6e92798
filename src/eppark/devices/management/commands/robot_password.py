"""``eppark robot-password CODE``: a robot's fresh MQTT password, printed once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from eppark.devices.models import Robot
from eppark.devices.rotation import FROM_COMMAND_LINE, PASSWORD_RESET, new_robot_password


class Command(BaseCommand):
    """Print a fresh password for one robot; store only its hash, in the robot's history."""

    help = (
        "Give a robot a fresh MQTT password: printed once (the password alone, one line), only "
        "its hash is stored; the old one stops working. With Mosquitto, write its password "
        "file again (eppark mosquitto-config DIR) and reload it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """The robot's code."""
        parser.add_argument("code", help="the robot's factory code (its MQTT user name)")

    def handle(self, *args: Any, **options: Any) -> None:
        """Print the password, or fail with exit 2 for an unknown robot."""
        robot = Robot.objects.filter(code=options["code"]).first()
        if robot is None:
            raise CommandError(f"no robot with code {options['code']!r}", returncode=2)
        password = new_robot_password(robot, reason=PASSWORD_RESET + FROM_COMMAND_LINE)
        self.stdout.write(password)
