"""The back office's call centres: admins only; the key and the secret are never shown."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from eppark.accounts.models import Role
from eppark.calls.models import CallCentre
from eppark.devices.keys import key_digest
from tests.integration.factories import call_centre, staff

pytestmark = pytest.mark.django_db

KEY = "k-cti-admin-0123456789wxyz"
SECRET = "the-signing-secret-42"


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def centre(db: Any) -> CallCentre:
    found: CallCentre = call_centre(KEY, secret=SECRET, callout_url="http://127.0.0.1:8010/c")
    return found


def test_an_admin_sees_the_key_masked_and_never_the_secret(centre: CallCentre) -> None:
    admin_user = staff("adm", Role.ADMIN, [])
    client = logged_in(admin_user)
    for url in (
        reverse("admin:calls_callcentre_changelist"),
        reverse("admin:calls_callcentre_change", args=[centre.pk]),
    ):
        page = client.get(url).content.decode()
        assert "••••••••wxyz" in page
        assert KEY not in page
        assert SECRET not in page
        assert centre.key_digest not in page


def test_a_blank_secret_keeps_it_a_new_key_replaces_the_old(centre: CallCentre) -> None:
    client = logged_in(staff("adm", Role.ADMIN, []))
    url = reverse("admin:calls_callcentre_change", args=[centre.pk])
    form = {
        "provider": "generic",
        "name": "改名",
        "callout_url": "http://127.0.0.1:8010/c",
        "access_key_id": "",
        "new_key": "",
        "new_secret": "",
    }
    assert client.post(url, form).status_code == 302
    centre.refresh_from_db()
    assert (centre.name, centre.secret, centre.key_digest) == ("改名", SECRET, key_digest(KEY))
    response = client.post(url, {**form, "new_key": "k-new-key-abcdefgh", "new_secret": "s2"})
    assert response.status_code == 302
    centre.refresh_from_db()
    assert (centre.secret, centre.key_digest, centre.key_hint) == (
        "s2",
        key_digest("k-new-key-abcdefgh"),
        "efgh",
    )
    assert client.post(url, {**form, "clear_secret": "on"}).status_code == 302
    centre.refresh_from_db()
    assert centre.secret == ""


def test_adding_needs_a_fresh_key(centre: CallCentre) -> None:
    client = logged_in(staff("adm", Role.ADMIN, []))
    url = reverse("admin:calls_callcentre_add")
    form = {"provider": "tinet", "name": "天润", "callout_url": "", "access_key_id": "AK"}
    for given in ("", KEY):  # none, or the other centre's
        refused = client.post(url, {**form, "new_key": given})
        assert refused.status_code == 200
        assert list(refused.context["adminform"].form.errors) == ["new_key"]
    assert client.post(url, {**form, "new_key": "k-second-0123456789"}).status_code == 302
    assert CallCentre.objects.filter(key_digest=key_digest("k-second-0123456789")).exists()


@pytest.mark.parametrize("role", [Role.AGENT, Role.OPERATOR])
def test_agents_and_operators_cannot_open_call_centres(centre: CallCentre, role: Role) -> None:
    client = logged_in(staff("someone", role, []))
    assert client.get(reverse("admin:calls_callcentre_changelist")).status_code == 403
    url = reverse("admin:calls_callcentre_change", args=[centre.pk])
    assert client.get(url).status_code in (302, 403, 404)
    assert client.get(reverse("admin:calls_call_changelist")).status_code == 200
