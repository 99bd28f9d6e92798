"""What ``eppark demo`` sets up before serving: the city, robot credentials, cars inside."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction

from eppark.devices.credentials import demo_robot_password, hash_password, verify_password
from eppark.devices.models import Robot
from eppark.provisioning.apply import Summary, apply_plan
from eppark.provisioning.demo_city import demo_city
from eppark.provisioning.schema import parse_plan
from eppark.sim.traffic import seed_cars_inside

DEMO_USER = "demo"
DEMO_PASSWORD = "eppark-demo"


def set_up_demo(now: datetime) -> Summary:
    """Provision the demo city, give robots their demo passwords, park cars, add the login."""
    summary = apply_plan(parse_plan(demo_city(now)))
    demo_robot_passwords()
    seed_cars_inside(now)
    ensure_demo_login()
    return summary


def demo_robot_passwords() -> dict[str, str]:
    """Each robot's demo password (derived from the secret key), stored as its MQTT hash."""
    passwords = {}
    for robot in Robot.objects.all():
        password = demo_robot_password(robot.code)
        if not verify_password(password, robot.mqtt_password_hash):
            robot.mqtt_password_hash = hash_password(password)
            robot.save(update_fields=["mqtt_password_hash", "updated_at"])
        passwords[robot.code] = password
    return passwords


def ensure_demo_login() -> None:
    """The demo's superuser, with its known password."""
    with transaction.atomic():
        user, _created = User.objects.get_or_create(
            username=DEMO_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        if not user.check_password(DEMO_PASSWORD) or not user.is_superuser:
            user.set_password(DEMO_PASSWORD)
            user.is_staff = user.is_superuser = True
            user.save()
