"""The open-gate log (开闸列表) in Chromium: an exit's abnormal open with its photos loaded.

The evidence is taken the real way first: the robot's ID camera answers ``capture_id``
(an ``id_photo`` event through the gateway's store), the environment camera's snapshot
comes from the Ezviz stand-in over HTTP; the agent then opens the gate abnormally.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Page, expect

from eppark.accounts.roles import sync_role_groups
from eppark.calls.models import Call, CallCentre
from eppark.console import cases, evidence
from eppark.devices import ezviz
from eppark.devices.keys import key_digest
from eppark.gateway import protocol, store
from eppark.sim.ezviz import EzvizStandIn
from eppark.sim.picture import id_card_png
from tests.e2e.test_live_pages_browser import PASSWORD
from tests.integration.factories import build_full_lot

pytestmark = pytest.mark.django_db(transaction=True)
LOADED = "img => img.complete && img.naturalWidth > 0"
SCREENSHOT = "/tmp/eppark-open-gate-log.png"


@pytest.fixture
def platform(settings: Any) -> Iterator[EzvizStandIn]:
    with EzvizStandIn() as standin:
        settings.EPPARK_EZVIZ_URL = standin.base_url
        settings.EPPARK_EZVIZ_APP_KEY = standin.app_key
        settings.EPPARK_EZVIZ_APP_SECRET = standin.app_secret
        ezviz.forget_tokens()
        yield standin
    ezviz.forget_tokens()


@pytest.fixture
def world(live_server: Any, platform: EzvizStandIn) -> dict[str, Any]:
    sync_role_groups()  # transactional tests flush the groups the migrations made
    a = build_full_lot("caike", "彩科彩悦大厦", "粤B11111", "13900000001")
    b = build_full_lot("futian", "福田中心", "粤B99999", "13900000002")
    for user in (a.agent, b.agent):
        user.set_password(PASSWORD)
        user.save()
    CallCentre.objects.create(provider="generic", name="呼叫中心", key_digest=key_digest("k-cc"))
    call_id = uuid.uuid4().hex
    for kind in ("ringing", "answered"):
        body = {
            "event": kind,
            "call_id": call_id,
            "caller": "13900000001",
            "seat": a.agent.seat.number,
            "at": timezone.now().isoformat(),
        }
        response = Client().post("/cti/generic/k-cc", json.dumps(body), "application/json")
        assert response.status_code == 200
    call = Call.objects.get(call_id=call_id)
    command = evidence.capture_id(call, a.agent, count=2)
    events = [
        protocol.Event(
            f"ev-{index}",
            timezone.now(),
            protocol.IdPhoto(id_card_png(index), "image/png", cmd_id=command.cmd_id, index=index),
        )
        for index in (1, 2)
    ]
    store.apply_events(
        [(a.world.robot.code, event.to_json().encode()) for event in events], timezone.now()
    )
    scene = evidence.capture_scene(call, a.agent)
    ids = [photo.pk for photo in evidence.id_photos(call)]
    assert len(ids) == 2
    record = cases.abnormal_open(
        call, a.agent, "special_vehicle", "警车粤B12345，张警官出场", ids, [scene.pk]
    )
    return {"url": live_server.url, "a": a, "b": b, "record": record}


def log_in(page: Page, base: str, username: str) -> None:
    page.goto(base + "/console/opens/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(base + "/console/opens/")


def test_the_log_shows_the_opens_photos(world: dict[str, Any], browser_page: Page) -> None:
    page, base, record = browser_page, world["url"], world["record"]
    log_in(page, base, "kf-caike")
    expect(page.locator("h1")).to_have_text("开闸列表")
    row = page.locator(f'tr[data-open-id="{record.pk}"]')
    expect(row.locator(".reason")).to_have_text("特殊车辆")
    expect(row.locator(".note")).to_have_text("警车粤B12345，张警官出场")
    thumbs = row.locator("img.thumb")
    expect(thumbs).to_have_count(3)
    selector = f'tr[data-open-id="{record.pk}"] img.thumb'
    page.wait_for_function(f"() => [...document.querySelectorAll('{selector}')].every({LOADED})")
    widths = thumbs.evaluate_all("imgs => imgs.map(img => img.naturalWidth)")
    assert sorted(widths) == [160, 160, 160]  # two ID-card PNGs and the scene JPEG
    page.screenshot(path=SCREENSHOT, full_page=True)

    # filter by reason: the other reasons list nothing
    page.select_option("select[name=reason]", "non_motor")
    page.get_by_role("button", name="筛选").click()
    expect(page.locator("#opens-empty")).to_be_visible()
    page.select_option("select[name=reason]", "special_vehicle")
    page.get_by_role("button", name="筛选").click()
    expect(page.locator("tr.open-row")).to_have_count(2)  # this one and the factory's

    # another lot's agent sees neither the row nor the photos
    other = page.context.browser
    assert other is not None
    context = other.new_context(locale="zh-CN")
    try:
        theirs = context.new_page()
        log_in(theirs, base, "kf-futian")
        expect(theirs.locator(f'tr[data-open-id="{record.pk}"]')).to_have_count(0)
        photo = record.evidence.first()
        response = theirs.goto(f"{base}/evidence/abnormal-open/{photo.pk}/file/")
        assert response is not None
        assert response.status == 404
    finally:
        context.close()
