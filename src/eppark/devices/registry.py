"""What a camera's push needs to know about its camera, gate, lot and robot, kept in memory.

Every push names its camera by the secret key in the URL. Looking the camera,
its gate, the lot's policy and tariff and the gate's robot up costs a join
per push; they change a few times a year. ``camera_for`` keeps a snapshot
per key: a change saved in this process (admin, provisioning) drops every
snapshot at once through model signals, and other processes see it within
``EPPARK_CONFIG_TTL_S`` seconds (default 5). Unknown keys are remembered for
the same time, so a flood of wrong keys costs no queries either.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from eppark.domain.decide import Direction, LotPolicy


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

_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[float, CameraConfig | None]] = {}
_online_marks: dict[int, float] = {}
_generation = 0  # bumped by every change: a snapshot loaded across a change is not kept


def ttl() -> float:
    """Seconds a snapshot is trusted before it is read again."""
    return float(getattr(settings, "EPPARK_CONFIG_TTL_S", 5))


def camera_for(vendor: str, key: str) -> CameraConfig | None:
    """The camera posting with ``key`` (None: no such camera), from memory when fresh."""
    now = time.monotonic()
    entry = _cache.get((vendor, key))
    if entry is not None and entry[0] > now:
        return entry[1]
    generation = _generation
    config = _load(vendor, key)
    with _lock:
        if generation == _generation:  # nothing changed while it loaded: safe to keep
            _cache[(vendor, key)] = (now + ttl(), config)
    return config


def due_online_mark(camera_pk: int) -> bool:
    """Whether to write that the camera was heard from now (True once per refresh period)."""
    now = time.monotonic()
    with _lock:
        if _online_marks.get(camera_pk, -ONLINE_REFRESH_S) > now - ONLINE_REFRESH_S:
            return False
        _online_marks[camera_pk] = now
        return True


def forget(*_args: Any, **_kwargs: Any) -> None:
    """Drop every snapshot (a camera, gate, lot or robot changed)."""
    global _generation
    with _lock:
        _generation += 1
        _cache.clear()
        _online_marks.clear()


def _load(vendor: str, key: str) -> CameraConfig | None:
    from eppark.devices.models import Camera, Robot

    camera = (
        Camera.objects.select_related("gate__lot", "lot").filter(vendor=vendor, key=key).first()
    )
    if camera is None:
        return None
    gate_config = None
    gate = camera.gate
    if gate is not None:
        robot = Robot.objects.filter(gate=gate).values_list("pk", "code").first()
        gate_config = GateConfig(
            pk=gate.pk,
            lot_id=gate.lot_id,
            direction=Direction(gate.direction),
            opening_channel=str(gate.opening_channel),
            policy=gate.lot.policy,
            tariff=dict(gate.lot.tariff or {}),
            robot_id=robot[0] if robot else None,
            robot_code=robot[1] if robot else None,
        )
    return CameraConfig(
        pk=camera.pk,
        vendor=camera.vendor,
        serial=camera.serial,
        lot_id=camera.lot_id,
        tz=ZoneInfo(camera.lot.timezone),
        has_api=bool(camera.api_url),
        gate=gate_config,
    )


def connect_signals() -> None:
    """Forget snapshots whenever a camera, gate, lot or robot is saved or deleted."""
    from eppark.devices.models import Camera, Robot
    from eppark.lots.models import Gate, Lot

    for model in (Camera, Robot, Gate, Lot):
        post_save.connect(forget, sender=model, dispatch_uid=f"registry-save-{model.__name__}")
        post_delete.connect(forget, sender=model, dispatch_uid=f"registry-del-{model.__name__}")
