"""Evidence photos actually load in a browser: back office, robot mirror, a phone's signed link."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from eppark.accounts.models import Role
from eppark.accounts.roles import sync_role_groups
from eppark.devices.models import RobotScreen
from eppark.evidence import links
from eppark.sim.cameras import fake_jpeg
from eppark.stays.models import GateVisit
from tests.e2e.test_live_pages_browser import log_in
from tests.integration.factories import build_lot, staff

pytestmark = pytest.mark.django_db(transaction=True)

LOADED = "img => img.complete && img.naturalWidth > 0"


@pytest.fixture
def world(live_server: Any, settings: Any) -> dict[str, Any]:
    sync_role_groups()  # transactional tests flush the groups the migrations made
    root = User.objects.create_superuser("root", password="pw-not-used")
    a = build_lot("caike", "彩科彩悦大厦", "粤B11111", root)
    b = build_lot("futian", "福田中心", "粤B99999", root)
    photo = fake_jpeg("caike visit")  # what the simulated cameras send: a real JPEG
    name = default_storage.save("photos/caike/visit.jpg", ContentFile(photo))
    visit = GateVisit.objects.get(lot=a.lot)
    visit.photo = name
    visit.save()
    a.stay.entry_photo = name
    a.stay.save()
    staff("op-a", Role.OPERATOR, [a.lot])
    staff("op-b", Role.OPERATOR, [b.lot])
    return {"a": a, "b": b, "visit": visit, "url": live_server.url}


def test_gate_visit_page_shows_its_photo(world: dict[str, Any], browser_page: Page) -> None:
    page, visit = browser_page, world["visit"]
    log_in(page, world["url"], reverse("admin:stays_gatevisit_change", args=[visit.pk]), "op-a")
    photo = page.locator("img.evidence-photo")
    expect(photo).to_have_count(1)
    photo.wait_for()
    page.wait_for_function(f"() => ({LOADED})(document.querySelector('img.evidence-photo'))")
    assert photo.evaluate("img => img.naturalWidth") == 160

    page.goto(world["url"] + reverse("admin:stays_gatevisit_changelist"))
    page.wait_for_function(f"() => ({LOADED})(document.querySelector('img.evidence-photo'))")


def test_another_lots_operator_gets_no_photo(world: dict[str, Any], browser_page: Page) -> None:
    page, visit = browser_page, world["visit"]
    log_in(page, world["url"], reverse("admin:index"), "op-b")
    response = page.goto(world["url"] + f"/evidence/gate-visit/{visit.pk}/photo/")
    assert response is not None
    assert response.status == 404


def test_robot_mirror_shows_the_groups_photos(world: dict[str, Any], browser_page: Page) -> None:
    page, a = browser_page, world["a"]
    signed = links.signed_url(
        "stay", a.stay.pk, "entry_photo", str(a.stay.entry_photo.name), now=time.time() - 86400
    )
    RobotScreen.objects.create(
        robot=a.robot,
        voice="您的共享车位已满",
        display={
            "kind": "vehicles",
            "vehicles": [
                {"plate": a.stay.plate, "photo_url": signed, "entered_at": None},
            ],
        },
        light="yellow",
        since=timezone.now(),
        cmd_id="c-1",
    )
    log_in(page, world["url"], reverse("console:robot", args=[a.robot.code]), "op-a")
    page.wait_for_function(f"() => ({LOADED})(document.querySelector('#vehicles img'))")


def test_a_phone_opens_a_signed_link_without_login(
    world: dict[str, Any], browser_page: Page
) -> None:
    page, a = browser_page, world["a"]
    path = links.signed_url("stay", a.stay.pk, "entry_photo", str(a.stay.entry_photo.name))
    path = path.split("/evidence/", 1)[1]
    response = page.goto(f"{world['url']}/evidence/{path}")
    assert response is not None
    assert response.status == 200
    page.wait_for_function(f"() => ({LOADED})(document.images[0])")
