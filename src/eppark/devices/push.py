"""One camera push, start to finish: find the camera, read the payload, act, answer.

Shared by the lean device ingress (``eppark.devices.ingress``, what ``eppark
serve`` runs) and the Django view (WSGI, tests), so both answer exactly
alike. The secret key in the path names the camera; a wrong key is 404 and
changes nothing. A malformed payload is a 4xx with a JSON error, changes
nothing, and never tells the camera to open. A push is decided within
``EPPARK_PUSH_DEADLINE_S`` of its arrival or refused with 503, as is one the
database cannot take (``receive_in_time``; ``eppark.devices.deadline``).

A payload naming another serial than the provisioned one is acted on all the
same and raised as a device alarm (``eppark.devices.alarms``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import datetime

from django.db import connection
from django.utils import timezone

from eppark.dbstate import DatabaseState, drop_connection, unreachable
from eppark.devices import alarms, outbox
from eppark.devices.deadline import DeadlinePassed, statements_before
from eppark.devices.lpr import ADAPTERS, BadPayload, Heartbeat, HttpPush
from eppark.devices.lpr.events import Reply, json_reply
from eppark.devices.models import Channel
from eppark.devices.registry import CameraConfig, camera_for, due_online_mark
from eppark.rawsql import ts
from eppark.stays import barrier, reads

log = logging.getLogger(__name__)


def error(status: int, message: str) -> Reply:
    """A JSON error reply."""
    return json_reply({"error": message}, status)


NOT_FOUND = error(404, "not found")
TOO_LATE = error(503, "not decided in time; nothing was done, send it again")
UNAVAILABLE = error(503, "database unavailable; nothing was done, send it again")
database = DatabaseState("camera pushes", log)
_outages = 0  # database outages this process has seen: connections older than the last are stale
_local = threading.local()


def receive_in_time(
    vendor: str,
    key: str,
    tail: str,
    content_type: str,
    body: bytes,
    query: Mapping[str, str],
    *,
    arrived_at: datetime,
    deadline: float,
) -> Reply:
    """``receive`` for a push that arrived at ``arrived_at``, decided by ``deadline``.

    ``deadline`` is a ``time.monotonic()`` value: a push that waited for a thread or a
    database connection past it is refused (503) and nothing of it is written; so is
    one the database cannot take. Commands staged for it count from ``arrived_at``.
    """
    global _outages
    if getattr(_local, "outages", 0) != _outages:  # opened before the last outage: drop it
        drop_connection()
    _local.outages = _outages
    if time.monotonic() > deadline:
        return TOO_LATE
    try:
        with statements_before(deadline):
            reply = receive(vendor, key, tail, content_type, body, query, now=arrived_at)
    except DeadlinePassed:  # raised before the statement ran; the transaction rolled back
        return TOO_LATE
    except Exception as error:
        if not unreachable(error):
            raise
        drop_connection()
        if database.up:
            _outages += 1
            _local.outages = _outages
        database.failed(error, holding="camera pushes are refused (503)")
        return UNAVAILABLE
    database.succeeded()
    return reply


def receive(
    vendor: str,
    key: str,
    tail: str,
    content_type: str,
    body: bytes,
    query: Mapping[str, str],
    now: datetime | None = None,
) -> Reply:
    """Answer one push from a ``vendor`` camera configured with ``key``, arrived at ``now``."""
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
    now = now or timezone.now()
    alarms.check(camera, event, now)  # another serial than the provisioned one: raised
    _mark_online(camera, now)
    opens = False
    # a later open (an agent, a payment) waits for this camera's next reply only where
    # the gate opens through the reply (Vzenith comet, HXZX next push)
    collects = adapter.opens_by_reply and (
        camera.gate is None or barrier.channel_for(camera.gate, camera) == Channel.CAMERA_REPLY
    )
    if isinstance(event, Heartbeat):
        if collects:
            opens = outbox.take_reply_open(camera.pk, now)
    else:
        if camera.gate is None:
            return error(409, "this camera is not linked to a gate yet")
        outcome = reads.handle_plate_read(camera, event, now)
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
