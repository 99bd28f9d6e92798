"""Device alarms raised from camera pushes: a camera that is not the one provisioned.

The URL key names a camera. When a push reports another serial (MAC address,
device id where it is a serial) than the one provisioned, the push is still
acted on — a replaced camera must not silently shut a gate — and the back
office gets a ``DeviceAlarm``. The comparison is made against the serial the
camera registry holds in memory, so a matching push costs nothing; a
mismatching camera writes at most once per ``WRITE_EVERY_S`` seconds per
process (the alarm's count adds up the pushes in between).

A Dahua registration (``NotificationInfo/DeviceInfo``) for a camera with no
serial yet records the reported one: later pushes are compared with it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F

from eppark.devices.lpr import Event, Heartbeat
from eppark.devices.models import AlarmKind, Camera, DeviceAlarm
from eppark.devices.registry import CameraConfig

log = logging.getLogger(__name__)

WRITE_EVERY_S = 30.0
"""A camera's open alarm is brought up to date at most this often per process."""


@dataclass
class _Pending:
    written_at: float  # time.monotonic() of the last write; -inf before the first
    unwritten: int  # pushes seen since then
    detail: str


_lock = threading.Lock()
_pending: dict[tuple[int, str], _Pending] = {}


def same_serial(provisioned: str, reported: str) -> bool:
    """Whether two serials name the same device (case, spaces and MAC separators aside)."""

    def canonical(serial: str) -> str:
        return "".join(ch for ch in serial.casefold() if ch not in " :-")

    return canonical(provisioned) == canonical(reported)


def check(camera: CameraConfig, event: Event, now: datetime) -> None:
    """Raise (or bring up to date) an alarm when the push's serial is not the camera's."""
    reported = event.serial
    if isinstance(event, Heartbeat) and event.variant == "registration" and not camera.serial:
        _record_serial(camera, reported)
        return
    if not reported or not camera.serial or same_serial(camera.serial, reported):
        return
    detail = f"provisioned {camera.serial}, reported {reported}"
    if isinstance(event, Heartbeat) and event.model:
        detail += f" ({event.model})"
    key = (camera.pk, AlarmKind.SERIAL_MISMATCH.value)
    moment = time.monotonic()
    with _lock:
        pending = _pending.setdefault(key, _Pending(float("-inf"), 0, detail))
        pending.unwritten += 1
        pending.detail = detail
        if moment - pending.written_at < WRITE_EVERY_S:
            return
        count, pending.unwritten, pending.written_at = pending.unwritten, 0, moment
    log.warning("camera %s: %s", camera.pk, detail)
    try:
        raise_alarm(camera.pk, camera.lot_id, AlarmKind.SERIAL_MISMATCH, detail, now, count)
    except DatabaseError:  # the alarm waits for the next push; the gate is served regardless
        log.exception("camera %s: the device alarm could not be written", camera.pk)
        with _lock:
            pending.unwritten += count
            pending.written_at = float("-inf")


def raise_alarm(
    camera_pk: int, lot_id: int, kind: AlarmKind, detail: str, now: datetime, count: int = 1
) -> DeviceAlarm:
    """The camera's open alarm of this kind, brought up to date, or a new one."""
    for _attempt in range(3):
        open_alarms = DeviceAlarm.objects.filter(camera_id=camera_pk, kind=kind, acknowledged=False)
        if open_alarms.update(last_seen_at=now, count=F("count") + count, detail=detail[:500]):
            return open_alarms.get()
        try:
            with transaction.atomic():
                return DeviceAlarm.objects.create(
                    lot_id=lot_id,
                    camera_id=camera_pk,
                    kind=kind,
                    detail=detail[:500],
                    first_seen_at=now,
                    last_seen_at=now,
                    count=count,
                )
        except IntegrityError:
            continue  # another process raised it meanwhile: update that one
    raise RuntimeError(f"could not raise the {kind} alarm of camera {camera_pk}")


def _record_serial(camera: CameraConfig, reported: str) -> None:
    """A registering camera with no serial yet: keep the one it reports."""
    if not reported:
        return
    # save() (not update()) so that the registry forgets its snapshot at once
    stored = Camera.objects.filter(pk=camera.pk, serial="").first()
    if stored is not None:
        stored.serial = reported[:128]
        stored.save(update_fields=["serial", "updated_at"])
        log.info("camera %s registered with serial %s", camera.pk, reported)


def forget() -> None:
    """Drop the per-process write throttle (tests)."""
    with _lock:
        _pending.clear()
