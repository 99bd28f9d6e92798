"""The in-memory camera snapshot: one read for every camera, fresh after any change."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from eppark.devices import registry
from eppark.devices.keys import key_digest
from eppark.devices.models import Camera, Robot
from eppark.domain.decide import Direction
from eppark.lots.models import Gate, Lot
from tests.integration.factories import keyed_camera

pytestmark = pytest.mark.django_db


@pytest.fixture
def cameras() -> list[Camera]:
    lot = Lot.objects.create(code="caike", name="彩科", capacity=50)
    made = []
    for n in range(30):
        gate = Gate.objects.create(lot=lot, code=f"g{n}", name=f"g{n}", direction="entry")
        Robot.objects.create(code=f"EP-{n:04d}", name=f"g{n}", lot=lot, gate=gate)
        made.append(keyed_camera(f"k-{n}", vendor="vzenith", lot=lot, gate=gate, serial=f"s{n}"))
    Camera.objects.create(vendor="ezviz", lot=lot, serial="ez-1")  # no key: never pushes
    return made


def test_every_camera_is_known_after_one_read(cameras: list[Camera]) -> None:
    registry.forget()
    with CaptureQueriesContext(connection) as queries:
        found = [registry.camera_for("vzenith", camera.key or "") for camera in cameras]
        for _ in range(3):  # heartbeats: nothing more is read
            assert registry.camera_for("vzenith", "no-such-key") is None
            assert registry.camera_for("hikvision", "k-1") is None  # right key, wrong vendor
    assert len(queries) == 2  # robots, then cameras with their gates and lots
    for camera, config in zip(cameras, found, strict=True):
        assert config is not None
        assert config.gate is not None
        assert (config.pk, config.gate.pk, config.gate.direction) == (
            camera.pk,
            camera.gate_id,
            Direction.ENTRY,
        )
        assert config.gate.robot_code == f"EP-{cameras.index(camera):04d}"


def test_a_change_saved_here_applies_at_once(cameras: list[Camera]) -> None:
    assert registry.camera_for("vzenith", "k-0") is not None
    gate = cameras[0].gate
    assert gate is not None
    gate.direction = "exit"
    gate.save()
    config = registry.camera_for("vzenith", "k-0")
    assert config is not None
    assert config.gate is not None
    assert config.gate.direction == Direction.EXIT


def test_a_change_made_elsewhere_applies_within_the_ttl(
    cameras: list[Camera], settings: Any
) -> None:
    settings.EPPARK_CONFIG_TTL_S = 0.2
    registry.forget()
    assert registry.camera_for("vzenith", "k-0") is not None
    # another process renames the key: no signal reaches this one
    Camera.objects.filter(pk=cameras[0].pk).update(key_digest=key_digest("k-renamed"))
    deadline = time.monotonic() + 10
    while registry.camera_for("vzenith", "k-0") is not None:
        assert time.monotonic() < deadline, "the old key was still served after the TTL"
        time.sleep(0.05)
    renamed = registry.camera_for("vzenith", "k-renamed")
    assert renamed is not None
    assert renamed.pk == cameras[0].pk
