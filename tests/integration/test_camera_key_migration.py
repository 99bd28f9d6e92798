"""The migration that stops storing camera keys: existing keys become digests, pushes go on."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from eppark.devices import registry
from eppark.devices.keys import key_digest
from eppark.devices.models import Camera

# the lot as it was then too: later lot fields (renewal prices) are not in the old state
BEFORE = [("devices", "0005_lean_indexes"), ("lots", "0002_gate_opening_channel")]
KEY = "k-caike-exit-1-abcdef12"


@pytest.mark.django_db(transaction=True)
def test_existing_plaintext_keys_become_their_digests() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    lot = old.get_model("lots", "Lot").objects.create(code="caike", name="彩科", capacity=10)
    old_camera = old.get_model("devices", "Camera")
    old_camera.objects.create(vendor="vzenith", lot=lot, key=KEY, serial="s-1")
    old_camera.objects.create(vendor="ezviz", lot=lot, ezviz_serial="D1")
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    plate = Camera.objects.get(vendor="vzenith")
    assert plate.key_digest == key_digest(KEY)
    assert plate.key_hint == "ef12"
    assert Camera.objects.get(vendor="ezviz").key_digest is None
    with connection.cursor() as cursor:
        columns = [
            c.name for c in connection.introspection.get_table_description(cursor, "devices_camera")
        ]
    assert "key" not in columns
    registry.forget()
    found = registry.camera_for("vzenith", KEY)
    assert found is not None
    assert found.pk == plate.pk
