"""``eppark demo`` plants its published logins only into its own database; ``make demo PORT=``."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from eppark.accounts.models import StaffProfile
from eppark.devices.credentials import hash_password, verify_password
from eppark.devices.models import Robot
from eppark.lots.models import Lot
from eppark.operations.demo_setup import DEMO_PASSWORD
from tests.integration.factories import build_lot

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]


def demo(*args: str) -> str:
    out = io.StringIO()
    call_command("demo", "--no-serve", *args, stdout=out)  # the scenario table goes to sys.stdout
    return out.getvalue()


@pytest.fixture
def own_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's own database: DATABASE_URL unset (the test database stands in for it)."""
    monkeypatch.delenv("DATABASE_URL", raising=False)


def test_the_demo_refuses_a_database_named_by_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://parking@db.example/production")
    with pytest.raises(CommandError, match=r"DATABASE_URL is set.*--force"):
        demo()
    assert not User.objects.filter(username="demo").exists()
    assert not Lot.objects.exists()


def test_the_demo_refuses_a_database_with_real_users(own_database: None) -> None:
    User.objects.create_user("zhang.wei", password="a-real-password")
    with pytest.raises(CommandError, match=r"not the demo's: it holds user 'zhang.wei'.*--force"):
        demo()
    assert not User.objects.filter(username="demo").exists()


def test_the_demo_refuses_a_database_with_real_lots(own_database: None) -> None:
    Lot.objects.create(code="real-lot", name="真实停车场", capacity=10, tariff={})
    with pytest.raises(CommandError, match="lot 'real-lot'"):
        demo()
    assert not User.objects.filter(username="demo").exists()


def test_force_sets_the_demo_up_anyway(own_database: None) -> None:
    User.objects.create_user("zhang.wei", password="a-real-password")
    demo("--force")
    assert User.objects.get(username="demo").check_password(DEMO_PASSWORD)


def test_the_demo_prints_logins_for_an_agent_and_a_one_lot_operator(own_database: None) -> None:
    out = demo()
    assert f"demo / {DEMO_PASSWORD}" in out
    assert f"op-luohu / {DEMO_PASSWORD}" in out
    assert f"kf-001 / {DEMO_PASSWORD}" in out
    demo()  # its own database, set up again: still accepted

    profile = StaffProfile.objects.get(user__username="op-luohu")
    assert list(profile.lots.values_list("code", flat=True)) == ["mixc-luohu"]
    client = Client()
    assert client.login(username="op-luohu", password=DEMO_PASSWORD)
    page = client.get("/console/city/").content.decode()
    assert "华润大厦·万象城" in page
    assert "彩科彩悦大厦" not in page  # a scoped view: another lot's name does not appear
    assert Client().login(username="kf-001", password=DEMO_PASSWORD)


def test_make_demo_takes_a_port() -> None:
    done = subprocess.run(
        ["make", "-n", "-s", "demo", "PORT=8123"], cwd=REPO, capture_output=True, text=True
    )
    assert "eppark demo --port 8123" in done.stdout
    default = subprocess.run(["make", "-n", "-s", "demo"], cwd=REPO, capture_output=True, text=True)
    assert "eppark demo" in default.stdout
    assert "--port" not in default.stdout


def test_forced_into_another_database_the_demo_leaves_real_robots_passwords_alone(
    own_database: None,
) -> None:
    root = User.objects.create_superuser("root", password="a-real-password")
    world = build_lot("real-lot", "真实停车场", "粤B11111", root)
    Robot.objects.filter(pk=world.robot.pk).update(mqtt_password_hash=hash_password("its-own"))
    demo("--force")
    assert verify_password("its-own", Robot.objects.get(pk=world.robot.pk).mqtt_password_hash)
    assert Robot.objects.filter(lot__code="mixc-luohu").exclude(mqtt_password_hash="").exists()
