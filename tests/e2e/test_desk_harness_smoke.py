"""Smoke test of the desk harness (temporary)."""

from __future__ import annotations

import pytest

from eppark.calls.models import Call
from tests.e2e.desk_harness import CallCentre, DeskServer, Gates

pytestmark = pytest.mark.django_db(transaction=True)


def test_harness(desk_server: DeskServer) -> None:
    gates = Gates(desk_server)
    centre = CallCentre(desk_server)
    gates.give_pass("粤B12345")
    robot = gates.robots["entry"]
    mark = robot.mark()
    visit = gates.arrive("entry", "粤B12345")
    assert visit.scenario == "entry.monthly_valid"
    got = robot.received(mark)
    assert got.shows() == ("欢迎回家", "face", "green")
    assert got.opens == 1
    call_id = centre.ring(robot.row, gates.seat)
    call = Call.objects.get(call_id=call_id)
    assert call.agent_id == gates.agent.pk
    assert call.plate == "粤B12345"
    centre.close()
    gates.close()
