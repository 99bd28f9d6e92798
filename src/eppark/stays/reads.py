"""The intake of a plate read: store its photo, act on it once, record it.

``handle_plate_read`` is called by the device endpoints for every plate a
camera pushes. The photo is written to storage first, so no record ever
points to missing evidence; then, in one transaction, the read is decided
and acted on (``eppark.stays.gate_loop``), or, when the camera acted on it
by itself while offline, put in the offline backlog (``eppark.stays.offline``),
and finally the read itself is recorded. A read sent again (same camera and
read id) is answered as it was the first time and changes nothing.

This is the hot path (a read must be answered in milliseconds, hundreds a
second): the camera, gate, lot and robot come from memory
(``eppark.devices.registry``) and the database work is a few plain
statements on one cursor (``eppark.rawsql``), not the ORM.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction

from eppark.devices.lpr.events import PlateRead as Read
from eppark.devices.registry import CameraConfig
from eppark.rawsql import ts
from eppark.stays import offline
from eppark.stays.barrier import GateNotLinked
from eppark.stays.gate_loop import ReadOutcome, _decide_and_act


def handle_plate_read(camera: CameraConfig, read: Read, now: datetime) -> ReadOutcome:
    """Act on one plate read from ``camera``; idempotent per (camera, read id)."""
    gate = camera.gate
    if gate is None:
        raise GateNotLinked(f"camera {camera.pk} is not linked to a gate")
    photo = _store_photo(camera, read, now)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if read.offline:
                _insert_read(cursor, camera, read, now, photo, None, opened=False)
                offline.record(cursor, gate, read, photo, now)
                return ReadOutcome(open=False, visit_id=None)
            outcome = _decide_and_act(cursor, gate, camera, read, photo, now)
            # the read is recorded last: a re-sent read (same camera and read id) fails
            # here and rolls back everything it would have done a second time
            _insert_read(cursor, camera, read, now, photo, outcome.visit_id, outcome.open)
            return outcome
    except IntegrityError:
        # the same read arrived twice at once: the other request recorded it
        if photo:
            default_storage.delete(photo)
        earlier = _earlier_read(camera.pk, read.read_id)
        if earlier is None:
            raise
        return earlier


_INSERT_READ = (
    "INSERT INTO devices_plateread (camera_id, read_id, plate, raw_plate, read_at, received_at,"
    " offline, photo, visit_id, opened) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _insert_read(
    cursor: Any,
    camera: CameraConfig,
    read: Read,
    now: datetime,
    photo: str,
    visit_id: int | None,
    opened: bool,
) -> None:
    cursor.execute(
        _INSERT_READ,
        [
            camera.pk,
            read.read_id[:128],
            read.plate or "",
            (read.raw_plate or "")[:64],
            ts(read.read_at),
            ts(now),
            read.offline,
            photo,
            visit_id,
            opened,
        ],
    )


def _earlier_read(camera_id: int, read_id: str) -> ReadOutcome | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT opened, visit_id FROM devices_plateread WHERE camera_id = %s AND read_id = %s",
            [camera_id, read_id[:128]],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return ReadOutcome(open=bool(row[0]), visit_id=row[1], duplicate=True)


def _store_photo(camera: CameraConfig, read: Read, now: datetime) -> str:
    """Write the read's first image to storage; its name, or "" when there is none."""
    if not read.images:
        return ""
    image = read.images[0]
    suffix = ".png" if image.content_type == "image/png" else ".jpg"
    name = f"reads/{camera.lot_id}/{now:%Y/%m/%d}/{camera.pk}-{now:%H%M%S%f}{suffix}"
    return default_storage.save(name, ContentFile(image.data))
