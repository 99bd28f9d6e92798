"""``eppark mosquitto-config DIR``: Mosquitto's password file, ACL and config, from the database."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from eppark.devices.credentials import gateway_password, hash_password
from eppark.devices.models import Robot
from eppark.gateway.broker import write_mosquitto_config
from eppark.gateway.protocol import GATEWAY_USER


class Command(BaseCommand):
    """Write DIR/passwd, DIR/acl and DIR/mosquitto.conf for the robot link."""

    help = (
        "Write Mosquitto's password file (every robot that has a password, and the gateway's "
        "from EPPARK_MQTT_GATEWAY_PASSWORD), the robot ACL and mosquitto.conf into DIR. Run it "
        "again after eppark robot-password and reload Mosquitto (SIGHUP)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Where to write, and where Mosquitto listens."""
        parser.add_argument("folder", metavar="DIR", help="where to write the three files")
        parser.add_argument("--port", type=int, default=1883, help="listener port (1883)")
        parser.add_argument("--host", default="0.0.0.0", help="listener address (0.0.0.0)")
        parser.add_argument(
            "--owner",
            help="user to own the password file (default when run as root: mosquitto, "
            "the user Mosquitto runs as; the file is readable by its owner only)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Write the files and say what they hold."""
        try:
            gateway_hash = hash_password(gateway_password())
        except ImproperlyConfigured as error:
            raise CommandError(str(error), returncode=2) from None
        hashes = {GATEWAY_USER: gateway_hash}
        missing = []
        for code, hashed in Robot.objects.order_by("code").values_list(
            "code", "mqtt_password_hash"
        ):
            if hashed:
                hashes[code] = hashed
            else:
                missing.append(code)
        folder = Path(options["folder"])
        owner = options["owner"] or _default_owner()
        try:
            config = write_mosquitto_config(
                folder, options["port"], hashes=hashes, host=options["host"], owner=owner
            )
        except KeyError:
            message = f"no user {owner!r} to own the password file"
            raise CommandError(message, returncode=2) from None
        except OSError as error:
            raise CommandError(f"cannot write to {folder}: {error}", returncode=2) from None
        self.stdout.write(f"{config} ({len(hashes) - 1} robots and the gateway; reload: SIGHUP)")
        if missing:
            shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
            self.stdout.write(f"no password yet (eppark robot-password CODE): {shown}")


def _default_owner() -> str | None:
    """``mosquitto`` when run as root and that user exists (Mosquitto drops to it), else None."""
    import pwd

    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        return None
    return "mosquitto"
