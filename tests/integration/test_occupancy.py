"""Free spaces = capacity − cars inside, from the stays; never negative; closing by hand frees."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from eppark.lots.models import Lot
from eppark.records.errors import Refused
from eppark.stays.actions import close_by_hand
from eppark.stays.models import Stay, StayState

pytestmark = pytest.mark.django_db


def park(lot: Lot, plate: str, hours_ago: float = 1) -> Stay:
    return Stay.objects.create(
        lot=lot,
        plate=plate,
        entered_as="temp",
        entered_at=timezone.now() - timedelta(hours=hours_ago),
    )


def test_free_spaces_count_open_stays_only() -> None:
    lot = Lot.objects.create(code="t", name="测试", capacity=3)
    assert lot.free_spaces() == 3
    park(lot, "粤B11111")
    left = park(lot, "粤B22222")
    assert lot.free_spaces() == 1
    left.exited_at = timezone.now()
    left.state = StayState.LEFT
    left.save()
    assert lot.cars_inside() == 1
    assert lot.free_spaces() == 2


def test_free_spaces_never_negative() -> None:
    lot = Lot.objects.create(code="t", name="测试", capacity=2)
    for n in range(5):
        park(lot, f"粤B1111{n}")
    assert lot.cars_inside() == 5
    assert lot.free_spaces() == 0


def test_closing_a_stay_by_hand_frees_its_space_once() -> None:
    lot = Lot.objects.create(code="t", name="测试", capacity=1)
    stay = park(lot, "粤B11111", hours_ago=5)
    user = User.objects.create_user("op")
    assert lot.free_spaces() == 0
    close_by_hand(stay, user, timezone.now(), "车辆尾随离场")
    stay.refresh_from_db()
    assert stay.state == StayState.CLOSED_BY_HAND
    assert stay.closed_by == user
    assert lot.free_spaces() == 1
    first_exit = stay.exited_at
    with pytest.raises(Refused, match="已结束"):
        close_by_hand(stay, user, timezone.now(), "again")
    stay.refresh_from_db()
    assert stay.exited_at == first_exit


def test_closing_by_hand_never_ends_before_the_entry() -> None:
    lot = Lot.objects.create(code="t", name="测试", capacity=1)
    stay = park(lot, "粤B11111", hours_ago=1)
    user = User.objects.create_user("op")
    with pytest.raises(Refused, match="不能早于进场"):
        close_by_hand(stay, user, stay.entered_at - timedelta(days=1), "typo")
    stay.refresh_from_db()
    assert stay.exited_at is None


def test_back_office_action_closes_stays_and_the_lot_list_follows() -> None:
    lot = Lot.objects.create(code="t", name="测试", capacity=2)
    stays = [park(lot, "粤B11111"), park(lot, "粤B22222")]
    root = User.objects.create_superuser("root", password="x")
    client = Client()
    client.force_login(root)
    response = client.post(
        reverse("admin:stays_stay_close", args=[stays[0].pk]),
        {
            "exited_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "reason": "车辆尾随离场",
        },
    )
    assert response.status_code == 302
    assert lot.free_spaces() == 1
    assert Stay.objects.get(pk=stays[1].pk).exited_at is None
