"""One camera push, start to finish: find the camera, read the payload, act, answer.

Shared by the lean device ingress (``eppark.devices.ingress``, what ``eppark
serve`` runs) and the Django view (WSGI, tests), so both answer exactly
alike. The secret key in the path names the camera; a wrong key is 404 and
changes nothing. A malformed payload is a 4xx with a JSON error, changes
nothing, and never tells the camera to open.

A payload naming another serial than the provisioned one is acted on all the
same and raised as a device alarm (``eppark.devices.alarms``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from django.db import connection
from django.utils import timezone

from eppark.devices import alarms, outbox
from eppark.devices.lpr import ADAPTERS, BadPayload, Heartbeat, HttpPush
from eppark.devices.lpr.events import Reply, json_reply
from eppark.devices.models import Channel
from eppark.devices.registry import CameraConfig, camera_for, due_online_mark
from eppark.rawsql import ts
from eppark.stays import gate_loop

log = logging.getLogger(__name__)


def error(status: int, message: str) -> Reply:
    """A JSON error reply."""
    return json_reply({"error": message}, status)


NOT_FOUND = error(404, "not found")


def receive(
    vendor: str,
    key: str,
    tail: str,
    content_type: str,
    body: bytes,
    query: Mapping[str, str],
) -> Reply:
    """Answer one push from a ``vendor`` camera configured with ``key``."""
    if vendor not in ADAPTERS or (vendor == "dahua") != bool(tail):
        return NOT_FOUND
    camera = camera_for(vendor, key)
    if camera is None:
        return NOT_FOUND
    adapter = ADAPTERS[vendor]  # type: ignore[index]
    push = HttpPush(content_type=content_type, body=body, query=dict(query), path=tail)
    try:
        event = adapter.parse(push, tz=camera.tz)
    except BadPayload as exc:
        log.info("camera %s sent a bad payload: %s", camera.pk, exc)
        return error(400, str(exc))
    now = timezone.now()
    alarms.check(camera, event, now)  # another serial than the provisioned one: raised
    _mark_online(camera, now)
    opens = False
    # a later open (an agent, a payment) waits for this camera's next reply only where
    # the gate opens through the reply (Vzenith comet, HXZX next push)
    collects = adapter.opens_by_reply and (
        camera.gate is None or gate_loop.channel_for(camera.gate, camera) == Channel.CAMERA_REPLY
    )
    if isinstance(event, Heartbeat):
        if collects:
            opens = outbox.take_reply_open(camera.pk, now)
    else:
        if camera.gate is None:
            return error(409, "this camera is not linked to a gate yet")
        outcome = gate_loop.handle_plate_read(camera, event, now)
        opens = outcome.open
        if not opens and collects and not event.offline:
            opens = outbox.take_reply_open(camera.pk, now)
    return adapter.reply(event, open=opens)


def _mark_online(camera: CameraConfig, now: datetime) -> None:
    """Note that the camera was heard from (at most every few seconds per process)."""
    if not due_online_mark(camera.pk):
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE devices_camera SET online = %s, last_heartbeat_at = %s WHERE id = %s",
            [True, ts(now), camera.pk],
        )
