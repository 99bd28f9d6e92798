"""The staff user admin: the admin role cannot make anyone a superuser or widen their own lots."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from eppark.accounts.models import Role, StaffProfile
from tests.integration.factories import FullLot, build_full_lot, staff
from tests.integration.test_admin_walk import form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def lots(db: Any) -> tuple[FullLot, FullLot]:
    return (
        build_full_lot("caike", "彩科彩悦大厦", "粤B11111", "13811111111"),
        build_full_lot("futian", "福田中心", "粤B99999", "13899999999"),
    )


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def change_url(user: User) -> str:
    return reverse("admin:auth_user_change", args=[user.pk])


def posted(client: Client, user: User, **changes: Any) -> Any:
    """POST the user's change form as shown, with ``changes`` on top."""
    data = form_data(client.get(change_url(user)).content.decode())
    data.update(
        {name: value if isinstance(value, list) else [value] for name, value in changes.items()}
    )
    return client.post(change_url(user), data)


def test_admin_role_cannot_make_anyone_a_superuser(lots: tuple[FullLot, FullLot]) -> None:
    admin_user = staff("admin-1", Role.ADMIN, [])
    client = client_for(admin_user)
    operator = lots[0].operator
    everything = [str(p.pk) for p in Permission.objects.all()[:5]]
    response = posted(client, operator, is_superuser="on", user_permissions=everything)
    assert response.status_code in (200, 302)
    operator.refresh_from_db()
    assert not operator.is_superuser
    assert not operator.user_permissions.exists()
    posted(client, admin_user, is_superuser="on", user_permissions=everything)
    admin_user.refresh_from_db()
    assert not admin_user.is_superuser
    assert not admin_user.user_permissions.exists()


def test_admin_role_cannot_grant_the_admin_role_or_its_group(
    lots: tuple[FullLot, FullLot],
) -> None:
    admin_user = staff("admin-1", Role.ADMIN, [])
    client = client_for(admin_user)
    operator = lots[0].operator
    admins_group = admin_user.groups.get()
    posted(client, operator, **{"staff-0-role": Role.ADMIN, "groups": [str(admins_group.pk)]})
    operator.refresh_from_db()
    assert operator.staff.role == Role.OPERATOR
    assert list(operator.groups.values_list("name", flat=True)) == ["运营"]


def test_admin_role_cannot_change_its_own_lots_or_role(lots: tuple[FullLot, FullLot]) -> None:
    admin_user = staff("admin-1", Role.ADMIN, [lots[0].world.lot])
    client = client_for(admin_user)
    other = lots[1].world.lot
    posted(client, admin_user, **{"staff-0-lots": [str(other.pk)], "staff-0-role": "operator"})
    profile = StaffProfile.objects.get(user=admin_user)
    assert profile.role == Role.ADMIN
    assert list(profile.lots.values_list("code", flat=True)) == ["caike"]


def test_admin_role_cannot_touch_superusers_or_other_admins(lots: tuple[FullLot, FullLot]) -> None:
    root = User.objects.create_superuser("root", password="pw-not-used")
    peer = staff("admin-2", Role.ADMIN, [])
    client = client_for(staff("admin-1", Role.ADMIN, []))
    for target in (root, peer):
        for url in (
            change_url(target),
            reverse("admin:auth_user_password_change", args=[target.pk]),
        ):
            response = client.post(url, {"password1": "x-Takeover-1", "password2": "x-Takeover-1"})
            assert response.status_code == 403, url
        target.refresh_from_db()
        assert target.check_password("pw-not-used")


def test_admin_role_still_runs_staff_and_groups_follow_the_role(
    lots: tuple[FullLot, FullLot],
) -> None:
    client = client_for(staff("admin-1", Role.ADMIN, []))
    operator = lots[0].operator
    both = [str(lots[0].world.lot.pk), str(lots[1].world.lot.pk)]
    response = posted(client, operator, **{"staff-0-lots": both, "staff-0-role": "agent"})
    assert response.status_code == 302, response.content.decode()[:2000]
    operator.refresh_from_db()
    assert sorted(operator.staff.lots.values_list("code", flat=True)) == ["caike", "futian"]
    assert list(operator.groups.values_list("name", flat=True)) == ["客服"]


def test_superusers_may_grant_superuser_status(lots: tuple[FullLot, FullLot]) -> None:
    client = client_for(User.objects.create_superuser("root", password="pw-not-used"))
    operator = lots[0].operator
    response = posted(client, operator, is_superuser="on")
    assert response.status_code == 302
    operator.refresh_from_db()
    assert operator.is_superuser


def test_an_operator_allowed_to_see_users_sees_only_staff_of_their_lots(
    lots: tuple[FullLot, FullLot],
) -> None:
    operator = lots[0].operator
    operator.user_permissions.add(Permission.objects.get(codename="view_user"))
    client = client_for(operator)
    body = client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "kf-caike" in body
    assert "kf-futian" not in body
    assert "福田中心" not in body  # the lots filter offers their own lots only
    assert client.get(change_url(lots[1].agent)).status_code in (302, 403, 404)


def test_staff_status_follows_the_staff_profile_for_the_admin_role(
    lots: tuple[FullLot, FullLot],
) -> None:
    client = client_for(staff("admin-1", Role.ADMIN, []))
    plain = User.objects.create_user("visitor", password="pw-not-used")
    posted(client, plain, is_staff="on")
    plain.refresh_from_db()
    assert not plain.is_staff  # no role, no back office
    data = {
        "staff-TOTAL_FORMS": "1",
        "staff-INITIAL_FORMS": "0",
        "staff-0-name": "新运营",
        "staff-0-role": "operator",
        "staff-0-lots": [str(lots[0].world.lot.pk)],
        "staff-0-user": str(plain.pk),
    }
    response = posted(client, plain, **data)
    assert response.status_code == 302
    plain.refresh_from_db()
    assert plain.is_staff
    assert list(plain.groups.values_list("name", flat=True)) == ["运营"]
