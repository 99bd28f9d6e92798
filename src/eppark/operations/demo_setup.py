"""What ``eppark demo`` sets up before serving: the city, robot credentials, cars inside."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.auth.models import User
from django.db import connection, transaction

from eppark.devices.credentials import demo_robot_password, hash_password, verify_password
from eppark.devices.models import Robot
from eppark.lots.models import Lot
from eppark.provisioning.apply import Summary, apply_plan
from eppark.provisioning.demo_city import AN_AGENT, ONE_LOT_OPERATOR, demo_city
from eppark.provisioning.schema import parse_plan
from eppark.sim.traffic import seed_cars_inside

DEMO_USER = "demo"
DEMO_PASSWORD = "eppark-demo"
# Every login the demo prints (all with DEMO_PASSWORD): what each shows a newcomer.
DEMO_LOGINS = (
    (DEMO_USER, "superuser, every lot"),
    (ONE_LOT_OPERATOR, "operator of one lot: a scoped view"),
    (AN_AGENT, "agent, every lot"),
)


def set_up_demo(now: datetime) -> Summary:
    """Provision the demo city, give robots their demo passwords, park cars, add the logins."""
    summary = apply_plan(parse_plan(demo_city(now)))
    demo_robot_passwords()
    seed_cars_inside(now)
    ensure_demo_login()
    return summary


def foreign_data(now: datetime) -> list[str]:
    """What in this database is not the demo's (users, lots); empty for a fresh or demo database.

    The demo plants logins with a published password: it must not do that in a
    database that serves real lots and people.
    """
    tables = set(connection.introspection.table_names())
    city = demo_city(now)
    found: list[str] = []
    if User._meta.db_table in tables:
        ours = {DEMO_USER, *(user["username"] for user in city["users"])}
        found += [
            f"user {name!r}"
            for name in User.objects.exclude(username__in=ours)
            .order_by("username")
            .values_list("username", flat=True)[:3]
        ]
    if Lot._meta.db_table in tables:
        codes = [lot["code"] for lot in city["lots"]]
        found += [
            f"lot {code!r}"
            for code in Lot.objects.exclude(code__in=codes)
            .order_by("code")
            .values_list("code", flat=True)[:3]
        ]
    return found


def demo_robot_passwords() -> dict[str, str]:
    """Each demo robot's password (derived from the demo's key), stored as its MQTT hash.

    Only the demo city's robots: with ``--force`` in another database, real robots
    keep their own passwords.
    """
    passwords = {}
    codes = [lot["code"] for lot in demo_city(datetime.now(UTC))["lots"]]
    for robot in Robot.objects.filter(lot__code__in=codes):
        password = demo_robot_password(robot.code)
        if not verify_password(password, robot.mqtt_password_hash):
            robot.mqtt_password_hash = hash_password(password)
            robot.save(update_fields=["mqtt_password_hash", "updated_at"])
        passwords[robot.code] = password
    return passwords


def ensure_demo_login() -> None:
    """The demo's superuser, one-lot operator and agent, with the demo's known password."""
    with transaction.atomic():
        user, _created = User.objects.get_or_create(
            username=DEMO_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        if not user.check_password(DEMO_PASSWORD) or not user.is_superuser:
            user.set_password(DEMO_PASSWORD)
            user.is_staff = user.is_superuser = True
            user.save()
        for staff in User.objects.filter(username__in=[ONE_LOT_OPERATOR, AN_AGENT]):
            if not staff.check_password(DEMO_PASSWORD):  # provisioned without a password
                staff.set_password(DEMO_PASSWORD)
                staff.save(update_fields=["password"])
