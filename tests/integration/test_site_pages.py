"""Where a newcomer and a driver land: ``/``, "view site", unknown URLs, a robot's QR code."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.core import signing
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import translation
from django.views import defaults

from eppark.stays.models import GateVisit
from eppark.stays.present import qr_url
from eppark.stays.qr_pages import QR_MAX_AGE_S
from tests.integration.factories import LotWorld, build_lot

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db: Any) -> LotWorld:
    root = User.objects.create_superuser("root", password="pw-not-used")
    return build_lot("caike", "彩科彩悦大厦", "粤B11111", root)


@pytest.fixture
def visit(world: LotWorld) -> GateVisit:
    return GateVisit.objects.create(
        gate=world.exit,
        lot=world.lot,
        plate="粤B11111",
        arrived_at=world.stay.entered_at,
        scenario="exit.temp_unpaid",
    )


def _path(url: str) -> str:
    return urlsplit(url).path


def test_root_leads_to_the_console_through_the_login() -> None:
    client = Client()
    home = client.get("/")
    assert home.status_code == 302
    assert home["Location"] == reverse("console:city")
    page = client.get("/", follow=True)
    assert page.status_code == 200
    assert page.request["PATH_INFO"] == reverse("admin:login")


def test_the_admins_view_site_link_leads_to_the_console(world: LotWorld) -> None:
    client = Client()
    client.force_login(User.objects.get(username="root"))
    index = client.get(reverse("admin:index")).content.decode()
    assert '<a href="/">' in index
    landing = client.get("/", follow=True)
    assert landing.status_code == 200
    assert landing.request["PATH_INFO"] == reverse("console:city")
    assert "彩科彩悦大厦" in landing.content.decode()


def test_an_unknown_url_gets_a_friendly_chinese_404() -> None:
    response = Client().get("/no/such/page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "页面不存在" in body
    assert "前往EP停车控制台" in body


def test_a_drivers_qr_code_opens_the_drivers_page_for_its_gate(visit: GateVisit) -> None:
    # the flows themselves: tests/integration/test_qr_pages.py
    response = Client().get(_path(qr_url("temp_payment", visit.pk)))
    assert response.status_code == 200
    body = response.content.decode()
    assert "停车费" in body
    assert "彩科彩悦大厦" in body
    assert "彩科彩悦大厦出口" in body
    assert "粤B11111" in body
    assert 'name="viewport"' in body


def test_a_forged_qr_code_gets_a_friendly_400() -> None:
    forged = signing.dumps({"k": "temp_payment", "v": 1}, key="not-our-key", salt="eppark.qr")
    response = Client().get(f"/q/{forged}")
    assert response.status_code == 400
    assert "二维码无效" in response.content.decode()
    garbage = Client().get("/q/not-a-token")
    assert garbage.status_code == 400
    assert "二维码无效" in garbage.content.decode()


class _LongAgo(signing.TimestampSigner):
    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time()) - QR_MAX_AGE_S - 60)


def test_an_expired_qr_code_gets_a_friendly_400(visit: GateVisit) -> None:
    token = _LongAgo(salt="eppark.qr").sign_object({"k": "temp_payment", "v": visit.pk})
    response = Client().get(f"/q/{token}")
    assert response.status_code == 400
    assert "二维码已过期" in response.content.decode()


def test_a_qr_code_for_a_visit_no_longer_on_record_gets_a_friendly_404(world: LotWorld) -> None:
    response = Client().get(_path(qr_url("unplated_entry", 987654)))
    assert response.status_code == 404
    assert "未找到这次通行记录" in response.content.decode()


def test_server_errors_and_refusals_get_friendly_chinese_pages() -> None:
    request = RequestFactory().get("/console/city/")
    with translation.override("zh-hans"):
        error = defaults.server_error(request)
        denied = defaults.permission_denied(request, PermissionDenied())
        bad = defaults.bad_request(request, SuspiciousOperation())
    assert error.status_code == 500
    assert "服务器出了点问题，请稍后再试" in error.content.decode()
    assert denied.status_code == 403
    assert "无权访问" in denied.content.decode()
    assert bad.status_code == 400
    assert "请求有误" in bad.content.decode()
