"""ID photos over a real broker: the desk asks, the simulated robot's ID camera answers.

``capture_id`` stores the C3b prompt and the capture command; the gateway publishes them;
the simulated robot shows the prompt and sends its photos as ``id_photo`` events; the
gateway stores them for the call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone

from eppark.accounts.models import Role
from eppark.accounts.roles import sync_role_groups
from eppark.calls.models import Call, CallCentre
from eppark.console import evidence
from eppark.console.models import EvidenceKind
from eppark.devices.keys import key_digest
from eppark.devices.models import Command, CommandState, Robot
from eppark.devices.pictures import PNG, picture_type
from eppark.domain import desk
from tests.integration import mqtt_fixtures
from tests.integration.factories import staff
from tests.integration.mqtt_fixtures import TestBroker
from tests.integration.test_outbox_gateway import World, wait_until

mosquitto = mqtt_fixtures.mosquitto
embedded_broker = mqtt_fixtures.embedded_broker
any_broker = mqtt_fixtures.any_broker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(any_broker: TestBroker) -> Iterator[World]:
    sync_role_groups()  # transactional tests flush the groups the migrations made
    built = World(any_broker)
    try:
        yield built
    finally:
        built.close()


def test_the_robots_id_camera_answers_the_desk(world: World) -> None:
    agent = staff("kf-1", Role.AGENT, [world.lot])
    Robot.objects.filter(code="EP-0002").update(phone="14400000002")
    CallCentre.objects.create(provider="generic", name="呼叫中心", key_digest=key_digest("k-cc"))
    for kind in ("ringing", "answered"):
        body = {
            "event": kind,
            "call_id": "c-1",
            "caller": "14400000002",
            "seat": agent.seat.number,
            "at": timezone.now().isoformat(),
        }
        response = Client().post("/cti/generic/k-cc", json.dumps(body), "application/json")
        assert response.status_code == 200
    call = Call.objects.get(call_id="c-1")
    command = evidence.capture_id(call, agent, count=2)

    wait_until(lambda: len(evidence.id_photos(call)) == 2, what="two ID photos stored")
    sim = world.sims["EP-0002"]
    assert sim.screen is not None
    assert sim.screen.voice == desk.SHOW_ID_VOICE  # the prompt came first
    assert sim.screen.light == "green"
    photos = evidence.id_photos(call)
    assert {p.cmd_id for p in photos} == {command.cmd_id}
    assert {p.kind for p in photos} == {EvidenceKind.ID_DOCUMENT}
    for photo in photos:
        with default_storage.open(str(photo.file.name), "rb") as handle:
            assert picture_type(handle.read()) == PNG
    wait_until(
        lambda: Command.objects.get(pk=command.pk).state == CommandState.DONE,
        what="the capture acked done",
    )
