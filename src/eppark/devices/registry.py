"""What a camera's push needs to know about its camera, gate, lot and robot, kept in memory.

Every push names its camera by the secret key in the URL; the database keeps only
the key's SHA-256 (``devices.keys``), so a push's key is hashed once and looked up
by its digest. Looking the camera,
its gate, the lot's policy and tariff and the gate's robot up costs a join
per push; they change a few times a year. ``camera_for`` keeps one snapshot
of every camera: a change saved in this process (admin, provisioning) drops
it at once through model signals, and other processes see it within
``EPPARK_CONFIG_TTL_S`` seconds (default 5). A flood of wrong keys costs no
queries either.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from eppark.devices.keys import key_digest
from eppark.domain.decide import Direction, LotPolicy
from eppark.gateway.protocol import is_robot_code

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GateConfig:
    """A gate as the gate loop sees it: its lot's policy and tariff, its robot, its channel."""

    pk: int
    lot_id: int
    direction: Direction
    opening_channel: str  # as configured: auto, robot, camera_reply or camera_api
    policy: LotPolicy
    tariff: dict[str, Any]
    robot_id: int | None
    robot_code: str | None


@dataclass(frozen=True, slots=True)
class CameraConfig:
    """A plate camera by its endpoint key."""

    pk: int
    vendor: str
    serial: str
    lot_id: int
    tz: ZoneInfo
    has_api: bool
    gate: GateConfig | None


ONLINE_REFRESH_S = 10.0
"""A camera's last-heard time is written at most this often per process (not on every push)."""


@dataclass(frozen=True, slots=True)
class _Snapshot:
    expires: float  # time.monotonic()
    cameras: dict[tuple[str, str], CameraConfig]  # by (vendor, key digest)


_lock = threading.Lock()
_reloading = threading.Lock()
_snapshot: _Snapshot | None = None
_online_marks: dict[int, float] = {}
_generation = 0  # bumped by every change: a snapshot loaded across a change is not kept


def ttl() -> float:
    """Seconds a snapshot is trusted before it is read again."""
    return float(getattr(settings, "EPPARK_CONFIG_TTL_S", 5))


def camera_for(vendor: str, key: str) -> CameraConfig | None:
    """The camera posting with ``key`` (None: no such camera), from memory when fresh.

    One snapshot holds every camera, read in two queries once per ``ttl()``: a
    camera's heartbeats cost no queries however many cameras post, and neither do
    wrong keys. While one thread reads a new snapshot the others go on with the
    one before it (it is at most ``ttl()`` old, as before).
    """
    snapshot = _snapshot
    if snapshot is None or snapshot.expires <= time.monotonic():
        snapshot = _reload(stale=snapshot)
    return snapshot.cameras.get((vendor, key_digest(key)))


def _reload(stale: _Snapshot | None) -> _Snapshot:
    global _snapshot
    if stale is None:
        _reloading.acquire()
    elif not _reloading.acquire(blocking=False):
        return stale  # another thread is reading a new one
    try:
        current = _snapshot
        if current is not None and current.expires > time.monotonic():
            return current  # another thread read it meanwhile
        generation = _generation
        now = time.monotonic()
        fresh = _Snapshot(now + ttl(), _load_all())
        with _lock:
            if generation == _generation:  # nothing changed while it loaded: safe to keep
                _snapshot = fresh
        return fresh
    finally:
        _reloading.release()


def due_online_mark(camera_pk: int) -> bool:
    """Whether to write that the camera was heard from now (True once per refresh period)."""
    now = time.monotonic()
    with _lock:
        if _online_marks.get(camera_pk, -ONLINE_REFRESH_S) > now - ONLINE_REFRESH_S:
            return False
        _online_marks[camera_pk] = now
        return True


def forget(*_args: Any, **_kwargs: Any) -> None:
    """Drop the snapshot (a camera, gate, lot or robot changed)."""
    global _generation, _snapshot
    with _lock:
        _generation += 1
        _snapshot = None
        _online_marks.clear()


def _load_all() -> dict[tuple[str, str], CameraConfig]:
    from eppark.devices.models import Camera, Robot

    robots: dict[int, tuple[int, str]] = {}
    for pk, code, gate_id in Robot.objects.filter(gate__isnull=False).values_list(
        "pk", "code", "gate_id"
    ):
        if not is_robot_code(code):  # stored before codes were checked: it can never connect
            log.warning("robot %r cannot be reached over MQTT: its gate runs without it", code)
            continue
        robots.setdefault(gate_id, (pk, code))  # one robot per gate; the first if more
    zones: dict[str, ZoneInfo] = {}
    cameras: dict[tuple[str, str], CameraConfig] = {}
    for camera in Camera.objects.select_related("gate__lot", "lot").order_by("pk"):
        if not camera.key_digest:  # it never pushes (an Ezviz camera, say)
            continue
        gate = camera.gate
        gate_config = None if gate is None else config_of(gate, robots.get(gate.pk))
        zone = camera.lot.timezone
        if zone not in zones:
            zones[zone] = ZoneInfo(zone)
        cameras.setdefault(
            (camera.vendor, camera.key_digest),
            CameraConfig(
                pk=camera.pk,
                vendor=camera.vendor,
                serial=camera.serial,
                lot_id=camera.lot_id,
                tz=zones[zone],
                has_api=bool(camera.api_url),
                gate=gate_config,
            ),
        )
    return cameras


def config_of(gate: Any, robot: tuple[int, str] | None) -> GateConfig:
    """A gate (with its lot loaded) as the gate loop sees it; ``robot``: (id, code) or None."""
    return GateConfig(
        pk=gate.pk,
        lot_id=gate.lot_id,
        direction=Direction(gate.direction),
        opening_channel=str(gate.opening_channel),
        policy=gate.lot.policy,
        tariff=dict(gate.lot.tariff or {}),
        robot_id=robot[0] if robot else None,
        robot_code=robot[1] if robot else None,
    )


def gate_config(gate: Any) -> GateConfig:
    """The gate loop's view of ``gate`` read now (its robot, if it has a reachable one)."""
    from eppark.devices.models import Robot

    robot = Robot.objects.filter(gate_id=gate.pk).order_by("pk").values_list("pk", "code").first()
    usable = robot if robot is not None and is_robot_code(robot[1]) else None
    return config_of(gate, usable)


def connect_signals() -> None:
    """Forget snapshots whenever a camera, gate, lot or robot is saved or deleted."""
    from eppark.devices.models import Camera, Robot
    from eppark.lots.models import Gate, Lot

    for model in (Camera, Robot, Gate, Lot):
        post_save.connect(forget, sender=model, dispatch_uid=f"registry-save-{model.__name__}")
        post_delete.connect(forget, sender=model, dispatch_uid=f"registry-del-{model.__name__}")
