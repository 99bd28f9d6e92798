"""``eppark robot-state CODE``: what the robot is showing now, as its acks reported it."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from eppark.devices.models import Robot, RobotScreen


def robot_state(robot: Robot) -> dict[str, Any]:
    """``{"online", "voice", "display", "light", "since"}`` of one robot."""
    screen = RobotScreen.objects.filter(robot=robot).first()
    return {
        "online": robot.online,
        "voice": screen.voice if screen else None,
        "display": screen.display if screen else None,
        "light": screen.light if screen else None,
        "since": screen.since.isoformat() if screen and screen.since else None,
    }


class Command(BaseCommand):
    """Print one robot's current state as a JSON line."""

    help = "Print what a robot shows now: online, voice, display, light, since."

    def add_arguments(self, parser: CommandParser) -> None:
        """The robot's code."""
        parser.add_argument("code", help="the robot's factory code")

    def handle(self, *args: Any, **options: Any) -> None:
        """Print the state, or fail with exit 2 for an unknown robot."""
        robot = Robot.objects.filter(code=options["code"]).first()
        if robot is None:
            raise CommandError(f"no robot with code {options['code']!r}", returncode=2)
        self.stdout.write(json.dumps(robot_state(robot), ensure_ascii=False))
