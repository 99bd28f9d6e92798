"""The pass list's status filter uses each pass's own lot's expiry thresholds, not 3 and 7."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from eppark.domain.decide import PassStatus
from eppark.lots.models import Lot
from eppark.passes.models import MonthlyPass
from eppark.passes.standing import in_standing

pytestmark = pytest.mark.django_db

EXPIRED_DAYS = {"valid": -30.0, "1.5 days": 1.5, "5 days": 5.0, "8 days": 8.0}


def make_passes(lot: Lot, now: datetime) -> None:
    for name, days in EXPIRED_DAYS.items():
        MonthlyPass.objects.create(
            lot=lot,
            owner=f"{lot.code} {name}",
            valid_from=now - timedelta(days=90),
            valid_until=now - timedelta(days=days),
        )
    MonthlyPass.objects.create(
        lot=lot,
        owner=f"{lot.code} future",
        valid_from=now + timedelta(days=1),
        valid_until=now + timedelta(days=31),
    )


@pytest.fixture
def lots() -> dict[str, Lot]:
    now = timezone.now()
    usual = Lot.objects.create(code="usual", name="按3/7天", capacity=10)  # 3 / 7 days
    strict = Lot.objects.create(
        code="strict", name="按1/2天", capacity=10, expired_grace_days=1, expired_payable_days=2
    )
    lenient = Lot.objects.create(
        code="lenient", name="按6/10天", capacity=10, expired_grace_days=6, expired_payable_days=10
    )
    for lot in (usual, strict, lenient):
        make_passes(lot, now)
    return {"usual": usual, "strict": strict, "lenient": lenient}


EXPECTED = {
    "valid": {"usual valid", "strict valid", "lenient valid"},
    "grace": {"usual 1.5 days", "lenient 1.5 days", "lenient 5 days"},
    "payable": {"usual 5 days", "strict 1.5 days", "lenient 8 days"},
    "lapsed": {"usual 8 days", "strict 5 days", "strict 8 days"},
    "future": {"usual future", "strict future", "lenient future"},
}


@pytest.mark.parametrize("choice", list(EXPECTED))
def test_the_admin_filter_judges_each_pass_by_its_own_lots_days(
    lots: dict[str, Lot], choice: str
) -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-not-used"))
    response = client.get(reverse("admin:passes_monthlypass_changelist"), {"status": choice})
    assert response.status_code == 200
    shown = {p.owner for p in response.context["cl"].result_list}
    assert shown == EXPECTED[choice]


def test_the_filters_choices_name_no_fixed_day_counts(lots: dict[str, Lot]) -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-not-used"))
    response = client.get(reverse("admin:passes_monthlypass_changelist"))
    page = response.content.decode()
    assert "3–7" not in page
    assert "&gt; 7" not in page


def test_the_standing_column_follows_the_lot(lots: dict[str, Lot]) -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-not-used"))
    response = client.get(
        reverse("admin:passes_monthlypass_changelist"), {"q": "strict 1.5", "status": "payable"}
    )
    assert "已过期，仍可续费，1.5 天" in response.content.decode()


@pytest.mark.parametrize("status", list(PassStatus))
def test_a_query_and_the_domain_classify_every_pass_alike(
    lots: dict[str, Lot], status: PassStatus
) -> None:
    now = timezone.now()
    selected = set(in_standing(MonthlyPass.objects.all(), status, now))
    by_domain = {
        p
        for p in MonthlyPass.objects.select_related("lot")
        if p.view(0).status(now, p.lot.policy) is status
    }
    assert selected == by_domain
    assert selected  # every standing has passes here


def test_the_filter_counts_only_lots_in_the_list(lots: dict[str, Any]) -> None:
    now = timezone.now()
    strict_only = MonthlyPass.objects.filter(lot=lots["strict"])
    owners = {p.owner for p in in_standing(strict_only, PassStatus.LAPSED, now)}
    assert owners == {"strict 5 days", "strict 8 days"}
