"""The one set of migrations builds the schema on this run's database (SQLite or PostgreSQL)."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection

from eppark.accounts.roles import GROUP_NAMES

pytestmark = pytest.mark.django_db


def test_models_and_migrations_agree() -> None:
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_role_groups_exist_with_permissions() -> None:
    groups = {g.name: g for g in Group.objects.all()}
    for name in GROUP_NAMES.values():
        assert name in groups
    assert groups["客服"].permissions.filter(codename="add_abnormalopen").exists()
    assert not groups["客服"].permissions.filter(codename="change_lot").exists()
    assert groups["运营"].permissions.filter(codename="change_monthlypass").exists()
    assert groups["管理员"].permissions.filter(codename="delete_lot").exists()


def test_database_vendor_is_the_one_asked_for() -> None:
    import os

    expected = (
        "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    )
    assert connection.vendor == expected
