"""The offline backlog records stays as the live path would: one rule, at the read's own time.

A camera that lost the server opens its barrier by itself and uploads the reads
later (``isoffline``). Those pushes go through the real device endpoint here;
what they record is compared with what the live path records for the same car.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from eppark.devices.models import Command, PlateRead
from eppark.domain.tariff import compute_fee, parse_rule
from eppark.orders.models import Order, OrderState
from eppark.stays.models import GateVisit, Stay, StayState
from tests.integration.factories import TARIFF
from tests.integration.test_gate_loop import Site, opened

pytestmark = pytest.mark.django_db

LAPSED = -10.0  # the pass ended 10 days ago: past the lot's 7 days
IN_GRACE = -1.0  # ended a day ago: within the lot's 3 days


def tariff_fee(stay: Stay) -> int:
    """What the tariff charges for the stay's time, from entry to exit."""
    assert stay.exited_at is not None
    return compute_fee(parse_rule(TARIFF), stay.entered_at, stay.exited_at).due


def test_a_lapsed_pass_holder_entering_offline_starts_a_temp_stay_and_owes_the_fee() -> None:
    site = Site()
    site.give_pass("粤B12345", days=LAPSED)
    entered = timezone.now().replace(microsecond=0) - timedelta(hours=3)
    assert site.push("entry", "粤B12345", offline=True, at=entered).status_code == 200
    stay = Stay.objects.get()
    assert stay.entered_as == "temp"
    assert abs((stay.entered_at - entered).total_seconds()) < 1  # the read's time, not upload's

    left = entered + timedelta(hours=1, minutes=50)
    assert site.push("exit", "粤B12345", offline=True, at=left).status_code == 200
    stay.refresh_from_db()
    assert stay.state == StayState.LEFT
    assert stay.exit_gate == site.gates["exit"]
    assert stay.exited_at is not None
    assert abs((stay.exited_at - left).total_seconds()) < 1
    fee = tariff_fee(stay)
    assert fee == 800  # 1 h 50: the first hour 5 yuan, one more started hour 3 yuan
    assert (stay.total, stay.paid) == (fee, 0)  # it left owing the temp fee
    assert not GateVisit.objects.exists()
    assert not Command.objects.exists()


def test_an_offline_exit_counts_what_the_stay_paid() -> None:
    site = Site(confirm=False)
    entered = timezone.now() - timedelta(hours=5)
    site.push("entry", "粤B88888", offline=True, at=entered)
    stay = Stay.objects.get()
    paid_at = entered + timedelta(hours=1)
    Order.objects.create(
        kind="temp",
        lot=site.lot,
        plate="粤B88888",
        stay=stay,
        amount=500,
        state=OrderState.PAID,
        paid_at=paid_at,
        out_trade_no="T1",
    )
    left = entered + timedelta(hours=4)
    site.push("exit", "粤B88888", offline=True, at=left)
    stay.refresh_from_db()
    expected = tariff_fee(stay)  # 4 h: 5 + 3 × 3 yuan
    assert (stay.total, stay.paid) == (expected, 500)
    assert stay.total - stay.paid == expected - 500


def test_offline_reads_use_the_pass_as_it_stood_at_the_read() -> None:
    site = Site()
    # a pass that ended an hour ago was valid when the car drove in three hours ago
    site.give_pass("粤B12345", days=-1 / 24)
    site.push("entry", "粤B12345", offline=True, at=timezone.now() - timedelta(hours=3))
    assert Stay.objects.get(plate="粤B12345").entered_as == "pass"


def test_a_pass_started_after_the_offline_entry_does_not_make_it_a_pass_stay() -> None:
    site = Site()
    monthly = site.give_pass("粤B12345")
    monthly.valid_from = timezone.now() - timedelta(hours=1)
    monthly.save()
    site.push("entry", "粤B12345", offline=True, at=timezone.now() - timedelta(hours=3))
    assert Stay.objects.get(plate="粤B12345").entered_as == "temp"


def test_an_offline_entry_of_a_full_shared_group_is_temp() -> None:
    site = Site(confirm=False)
    site.give_pass("粤B11111", "粤B22222", spaces=1)
    assert opened(site.push("entry", "粤B11111"))
    site.push("entry", "粤B22222", offline=True, at=timezone.now() - timedelta(minutes=1))
    assert Stay.objects.get(plate="粤B22222").entered_as == "temp"


def test_a_later_backlog_entry_supersedes_the_open_stay_as_a_live_entry_does() -> None:
    site = Site(confirm=False)
    first = timezone.now() - timedelta(hours=3)
    site.push("entry", "粤B88888", offline=True, at=first)
    site.push("entry", "粤B88888", offline=True, at=first + timedelta(hours=1))
    old, new = Stay.objects.order_by("entered_at")
    assert old.state == StayState.CLOSED_BY_HAND
    assert old.close_note.startswith("superseded")
    assert new.state == StayState.INSIDE


def test_an_old_backlog_entry_does_not_reopen_a_newer_stay() -> None:
    site = Site(confirm=False)
    assert opened(site.push("entry", "粤B88888"))
    site.push("entry", "粤B88888", offline=True, at=timezone.now() - timedelta(hours=2))
    assert Stay.objects.count() == 1
    assert Stay.objects.get().state == StayState.INSIDE


def test_an_offline_read_sent_twice_is_one_stay() -> None:
    site = Site(confirm=False)
    at = timezone.now() - timedelta(hours=2)
    site.push("entry", "粤B88888", offline=True, at=at, plate_id=7)
    site.push("entry", "粤B88888", offline=True, at=at, plate_id=7)
    assert Stay.objects.count() == 1
    assert PlateRead.objects.count() == 1


# --- the live and offline paths agree ------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "pass_days", "live_scenario", "entered_as"),
    [
        ("valid pass", 30.0, "entry.monthly_valid", "pass"),
        ("no pass", None, "entry.temp_allowed", "temp"),
        ("lapsed pass", LAPSED, "entry.temp_allowed", "temp"),
        # live: the driver is asked to renew first, the barrier stays shut and no stay
        # starts; a camera on its own let the car in: it is inside on no valid pass
        ("expired in grace", IN_GRACE, "entry.monthly_expired", None),
        ("unplated", None, "entry.unplated", None),
    ],
)
def test_live_and_offline_entries_record_the_same_stay(
    case: str, pass_days: float | None, live_scenario: str, entered_as: str | None
) -> None:
    site = Site(confirm=False)
    plated = case != "unplated"
    live_plate, offline_plate = ("粤B10001", "粤B10002") if plated else (None, None)
    if pass_days is not None:
        site.give_pass("粤B10001", days=pass_days)
        site.give_pass("粤B10002", days=pass_days)
    site.push("entry", live_plate)
    assert GateVisit.objects.get().scenario == live_scenario
    live = Stay.objects.filter(plate="粤B10001").first() if plated else None
    assert (live.entered_as if live else None) == entered_as

    site.push("entry", offline_plate, offline=True, at=timezone.now() - timedelta(minutes=5))
    offline = Stay.objects.filter(plate="粤B10002").first() if plated else None
    if case == "expired in grace":
        assert offline is not None
        assert offline.entered_as == "temp"
    else:
        assert (offline.entered_as if offline else None) == entered_as
    if not plated:
        assert not Stay.objects.exists()


@pytest.mark.parametrize(
    ("case", "pass_days", "stay_hours"),
    [
        ("valid pass", 30.0, 3.0),
        ("no pass, free period", None, 0.25),
        ("no pass, owing", None, 3.0),
        ("lapsed pass", LAPSED, 3.0),
    ],
)
def test_live_and_offline_exits_agree_on_what_is_owed(
    case: str, pass_days: float | None, stay_hours: float
) -> None:
    site = Site(confirm=False)
    if pass_days is not None:
        site.give_pass("粤B10001", "粤B10002", days=pass_days, spaces=2)
    entered = timezone.now() - timedelta(hours=stay_hours)
    for plate in ("粤B10001", "粤B10002"):
        site.push("entry", plate, offline=True, at=entered)
    site.push("exit", "粤B10001")  # live
    live_stay = Stay.objects.get(plate="粤B10001")
    live_visit = GateVisit.objects.get(plate="粤B10001", gate=site.gates["exit"])
    site.push("exit", "粤B10002", offline=True, at=timezone.now())
    offline_stay = Stay.objects.get(plate="粤B10002")
    owed = offline_stay.total - offline_stay.paid
    assert offline_stay.state == StayState.LEFT
    if live_visit.opened:  # the live path let it out owing nothing: so did the offline one
        assert live_stay.state == StayState.LEFT
        assert (live_stay.total - live_stay.paid) == owed == 0
    else:  # the live path asks for the fee; the offline one recorded it as owed
        assert live_visit.scenario in ("exit.temp_unpaid", "exit.monthly_lapsed")
        assert owed == tariff_fee(offline_stay) > 0
    assert offline_stay.entered_as == ("pass" if case == "valid pass" else "temp")


def test_a_camera_clock_ahead_of_ours_does_not_date_a_stay_in_the_future() -> None:
    site = Site(confirm=False)
    before = timezone.now()
    site.push("entry", "粤B88888", offline=True, at=before + timedelta(hours=1))
    stay = Stay.objects.get()
    assert before <= stay.entered_at <= timezone.now()
