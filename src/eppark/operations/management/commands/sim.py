"""``eppark sim robot|camera|call``: simulators that speak the real protocols.

- ``eppark sim robot CODE…`` connects as those robots over MQTT (the broker of
  ``MQTT_URL``, else the embedded one), acks commands and prints each as a JSON
  line. Passwords: ``--password``/``--passwords FILE``, else the demo's
  derived ones (what ``eppark demo`` stores for every robot).
- ``eppark sim camera --key K --plate P`` posts one plate read (or, with
  ``--heartbeat``, a heartbeat) in the camera's vendor format to a running
  server and prints the HTTP status and the reply body.
- ``eppark sim call --key K`` is a call centre (``eppark.sim.callcentre``): robots'
  call buttons become calls posted to ``/cti/generic/K``; EP Park's callouts to its
  ``--port`` are answered and connected.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from eppark.devices.credentials import demo_robot_password
from eppark.devices.keys import key_digest
from eppark.devices.lpr import VENDORS
from eppark.devices.models import Camera
from eppark.sim.callcentre import main_sim_call
from eppark.sim.cameras import build_heartbeat, build_push
from eppark.sim.robot import main_sim_robot


class Command(BaseCommand):
    """Run a simulator."""

    help = "Simulated robots (sim robot CODE…), plate cameras (sim camera …), a call centre."

    def add_arguments(self, parser: CommandParser) -> None:
        """The simulator and its own arguments."""
        parser.add_argument("device", choices=["robot", "camera", "call"])
        parser.add_argument("rest", nargs=argparse.REMAINDER)

    def handle(self, *args: Any, **options: Any) -> None:
        """Dispatch to the simulator."""
        rest: list[str] = options["rest"]
        if options["device"] == "robot":
            status = main_sim_robot(rest, out=sys.stdout, fallback=demo_robot_password)
        elif options["device"] == "call":
            status = main_sim_call(rest, out=sys.stdout)
        else:
            status = sim_camera(rest)
        if status:
            raise CommandError("simulator failed", returncode=status)


def sim_camera(argv: list[str]) -> int:
    """Post one vendor-shaped push for a camera to a running server."""
    parser = argparse.ArgumentParser(prog="eppark sim camera")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server")
    parser.add_argument("--key", required=True, help="the camera's endpoint key")
    parser.add_argument("--vendor", choices=VENDORS, help="default: the camera's, from the DB")
    parser.add_argument("--serial", help="default: the camera's, from the DB")
    parser.add_argument("--plate", help="the plate read (omit for no plate)")
    parser.add_argument("--plate-id", type=int, default=None)
    parser.add_argument("--offline", action="store_true", help="a backlog record")
    parser.add_argument("--heartbeat", action="store_true", help="send a heartbeat instead")
    args = parser.parse_args(argv)
    camera = Camera.objects.filter(key_digest=key_digest(args.key)).first()
    vendor = args.vendor or (camera.vendor if camera else None)
    serial = args.serial or (camera.serial if camera else None)
    if vendor not in VENDORS or not serial:
        print(
            "eppark sim camera: give --vendor and --serial for a key not in this database",
            file=sys.stderr,
        )
        return 2
    now = timezone.now()
    if args.heartbeat:
        push = build_heartbeat(vendor, serial)
    else:
        plate_id = args.plate_id or int(now.timestamp() * 1000) % 2_000_000_000
        push = build_push(vendor, serial, args.plate, now, plate_id=plate_id, offline=args.offline)
    url = f"{args.url.rstrip('/')}/devices/lpr/{vendor}/{args.key}"
    if push.path:
        url += "/" + push.path
    request = urllib.request.Request(
        url, data=push.body, method="POST", headers={"Content-Type": push.content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    except urllib.error.URLError as error:
        print(f"eppark sim camera: {error.reason}", file=sys.stderr)
        return 1
    print(
        json.dumps({"status": status, "reply": body.decode("utf-8", "replace")}, ensure_ascii=False)
    )
    return 0 if status < 400 else 1
