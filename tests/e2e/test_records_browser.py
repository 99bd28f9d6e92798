"""An operator closes a stay by hand in a real browser and reads its history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from eppark.accounts.models import Role
from eppark.accounts.roles import sync_role_groups
from eppark.stays.models import Stay, StayState
from tests.integration.factories import build_lot, staff

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-not-used"


def test_operator_closes_a_stay_by_hand_and_reads_its_history(
    live_server: Any, browser_page: Page
) -> None:
    sync_role_groups()  # transactional tests flush the groups the migrations made
    root = User.objects.create_superuser("root", password=PASSWORD)
    a = build_lot("caike", "彩科彩悦大厦", "粤B11111", root)
    staff("op-caike", Role.OPERATOR, [a.lot])
    stay = Stay.objects.create(
        lot=a.lot,
        plate="粤B12345",
        entered_as="temp",
        entered_at=timezone.now() - timedelta(hours=3),
        entry_gate=a.entry,
    )
    page, base = browser_page, live_server.url
    path = reverse("admin:stays_stay_change", args=[stay.pk])
    page.goto(base + path)
    page.fill("#id_username", "op-caike")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(base + path)

    page.click("text=手动结束")
    page.click("input[type=submit]")  # no reason: refused, nothing changed
    expect(page.locator(".errorlist")).to_be_visible()
    assert Stay.objects.get(pk=stay.pk).exited_at is None
    page.fill("#id_reason", "车辆尾随前车离场")
    page.screenshot(path="/tmp/eppark-stay-close.png", full_page=True)
    page.click("input[type=submit]")
    expect(page).to_have_url(base + path)
    expect(page.locator(".messagelist")).to_contain_text("应缴 ¥")
    assert Stay.objects.get(pk=stay.pk).state == StayState.CLOSED_BY_HAND

    page.click("a.historylink")
    expect(page.locator("#change-history")).to_contain_text("车辆尾随前车离场")
    expect(page.locator("#change-history")).to_contain_text("手动结束")
    expect(page.locator("#change-history")).to_contain_text("op-caike")
    page.screenshot(path="/tmp/eppark-stay-history.png", full_page=True)
