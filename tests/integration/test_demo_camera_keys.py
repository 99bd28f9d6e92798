"""The demo's simulated cameras still post with their keys, which the database no longer holds."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
from django.test import Client
from django.utils import timezone

from eppark.devices.keys import key_digest
from eppark.devices.models import Camera
from eppark.operations.demo_setup import set_up_demo
from eppark.provisioning.demo_city import demo_camera_keys
from eppark.sim.cameras import build_heartbeat
from eppark.sim.traffic import Planner

pytestmark = pytest.mark.django_db


def test_the_demo_traffic_posts_with_keys_the_database_only_knows_by_digest() -> None:
    now: datetime = timezone.now()
    set_up_demo(now)
    keys = demo_camera_keys()
    stored = set(Camera.objects.exclude(key_digest=None).values_list("key_digest", flat=True))
    assert stored == {key_digest(key) for key in keys}
    arrival = Planner(random.Random(3))._plan("entry.temp_allowed")
    assert arrival is not None
    assert arrival.key in keys
    camera = Camera.objects.get(pk=arrival.camera_id)
    heartbeat = build_heartbeat(arrival.vendor, camera.serial)
    url = f"/devices/lpr/{arrival.vendor}/{arrival.key}"
    if heartbeat.path:
        url += "/" + heartbeat.path
    response = Client().post(url, data=heartbeat.body, content_type=heartbeat.content_type)
    assert response.status_code == 200
