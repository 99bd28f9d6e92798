"""The open-gate log (开闸列表) at /console/opens/: filters, pages, photos, and per-lot scoping."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone

from eppark.accounts.models import Role
from eppark.console.models import AbnormalOpen, AbnormalOpenEvidence
from eppark.lots.models import Gate
from eppark.sim.picture import CAR_JPEG, id_card_png
from tests.integration.factories import FullLot, build_full_lot, staff

pytestmark = pytest.mark.django_db
URL = "/console/opens/"


@pytest.fixture
def lots(settings: Any) -> tuple[FullLot, FullLot]:
    now = timezone.now()
    a = build_full_lot("caike", "彩科彩悦大厦", "粤B11111", "13900000001", now)
    b = build_full_lot("futian", "福田中心", "粤B99999", "13900000002", now)
    # the evidence files the factories name, stored for real
    for lot, picture in ((a, CAR_JPEG), (b, id_card_png())):
        evidence = AbnormalOpenEvidence.objects.get(abnormal_open=lot.world.abnormal_open)
        default_storage.save(evidence.file.name, ContentFile(picture))
    return a, b


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rows(html: str) -> list[int]:
    """The abnormal opens listed, by id, in order."""
    return [int(pk) for pk in re.findall(r'data-open-id="(\d+)"', html)]


def options(html: str, name: str) -> list[str]:
    """The values a filter's dropdown offers (the empty choice left out)."""
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None, name
    return [value for value in re.findall(r'<option value="([^"]*)"', select.group(1)) if value]


def test_the_log_shows_each_open_with_its_photos_in_chinese(
    lots: tuple[FullLot, FullLot],
) -> None:
    a, b = lots
    page = client_for(a.agent).get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert rows(html) == [a.world.abnormal_open.pk]
    for words in ("开闸列表", "开闸原因", "备注", "车牌号", "特殊车辆", "警车粤B11111，警官进出"):
        assert words in html
    assert "kf-caike" in html  # the agent's name (the staff profile's)
    assert "福田中心" not in html
    assert "粤B99999" not in html

    evidence = AbnormalOpenEvidence.objects.get(abnormal_open=a.world.abnormal_open)
    photo_url = f"/evidence/abnormal-open/{evidence.pk}/file/"
    assert f'src="{photo_url}"' in html
    photo = client_for(a.agent).get(photo_url)
    assert photo.status_code == 200
    assert b"".join(photo.streaming_content) == CAR_JPEG  # type: ignore[attr-defined]

    # another lot's photo is refused to this agent, served to its own
    theirs = AbnormalOpenEvidence.objects.get(abnormal_open=b.world.abnormal_open)
    other_url = f"/evidence/abnormal-open/{theirs.pk}/file/"
    assert client_for(a.agent).get(other_url).status_code == 404
    assert client_for(b.agent).get(other_url).status_code == 200

    client = client_for(a.agent)
    client.cookies["django_language"] = "en"
    english = client.get(URL)
    assert "Open-gate log" in english.content.decode()
    assert "special vehicle" in english.content.decode()


def test_filters_narrow_the_log_and_offer_only_the_users_own_choices(
    lots: tuple[FullLot, FullLot],
) -> None:
    a, b = lots
    now = timezone.now()
    second = staff("kf-caike-2", Role.AGENT, [a.world.lot])
    entry_open = AbnormalOpen.objects.create(
        lot=a.world.lot,
        gate=a.world.entry,
        agent=second,
        opened_at=now - timedelta(days=2),
        plate="粤B22222",
        reason="non_motor",
        note="电动车进场",
    )
    old_open = AbnormalOpen.objects.create(
        lot=a.world.lot,
        gate=a.world.exit,
        agent=a.agent,
        opened_at=now - timedelta(days=10),
        plate="粤B33333",
        reason="special_person",
        note="业主老人",
    )
    client = client_for(a.agent)
    html = client.get(URL).content.decode()
    assert rows(html) == [a.world.abnormal_open.pk, entry_open.pk, old_open.pk]
    assert options(html, "lot") == [str(a.world.lot.pk)]
    assert set(options(html, "gate")) == {str(a.world.entry.pk), str(a.world.exit.pk)}
    assert set(options(html, "agent")) == {str(a.agent.pk), str(second.pk)}
    assert "kf-futian" not in html

    def listed(**query: str | int) -> list[int]:
        response = client.get(URL, query)
        assert response.status_code == 200
        return rows(response.content.decode())

    assert listed(gate=a.world.entry.pk) == [entry_open.pk]
    assert listed(agent=a.agent.pk) == [a.world.abnormal_open.pk, old_open.pk]
    assert listed(reason="special_person") == [old_open.pk]
    assert listed(lot=a.world.lot.pk, reason="special_vehicle") == [a.world.abnormal_open.pk]
    day = (now - timedelta(days=2)).astimezone(timezone.get_current_timezone()).date()
    assert listed(since=day.isoformat(), until=day.isoformat()) == [entry_open.pk]
    assert listed(since=(now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")) == [
        a.world.abnormal_open.pk,
        entry_open.pk,
    ]
    # another lot, its gate or its agent named in the query: refused by the form, nothing listed
    refused: list[dict[str, str | int]] = [
        {"lot": b.world.lot.pk},
        {"gate": b.world.exit.pk},
        {"agent": b.agent.pk},
        {"reason": "bogus"},
        {"since": "yesterday"},
    ]
    for query in refused:
        response = client.get(URL, query)
        assert response.status_code == 200
        assert rows(response.content.decode()) == []
        assert "福田中心" not in response.content.decode()


def test_the_log_is_paginated(lots: tuple[FullLot, FullLot]) -> None:
    a, _b = lots
    now = timezone.now()
    AbnormalOpen.objects.bulk_create(
        AbnormalOpen(
            lot=a.world.lot,
            gate=a.world.exit,
            agent=a.agent,
            opened_at=now - timedelta(minutes=n + 1),
            plate="粤B12345",
            reason="special_vehicle",
            note=f"第{n}辆",
        )
        for n in range(25)
    )
    client = client_for(a.agent)
    first = client.get(URL, {"reason": "special_vehicle"}).content.decode()
    second = client.get(URL, {"reason": "special_vehicle", "page": "2"}).content.decode()
    assert len(rows(first)) == 20
    assert len(rows(second)) == 6
    assert not set(rows(first)) & set(rows(second))
    assert "reason=special_vehicle&amp;page=2" in first


def test_only_staff_who_may_view_abnormal_opens_see_the_log(
    lots: tuple[FullLot, FullLot],
) -> None:
    a, _b = lots
    assert Client().get(URL).status_code == 302  # to the login page
    bare = staff("bare", None, [])
    assert client_for(bare).get(URL).status_code == 403
    operator = client_for(a.operator).get(URL)
    assert operator.status_code == 200
    assert rows(operator.content.decode()) == [a.world.abnormal_open.pk]
    nobody = staff("kf-nolot", Role.AGENT, [])
    assert rows(client_for(nobody).get(URL).content.decode()) == []
    assert Gate.objects.count() == 4
