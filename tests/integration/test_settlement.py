"""Orders placed and settled: the fee priced once, paid once, the waiting car let through."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from eppark.devices.models import Command
from eppark.domain.billing import Verdict
from eppark.orders import placing
from eppark.orders.models import Order, OrderState
from eppark.passes.models import MonthlyPass
from eppark.payments.providers.base import TradeResult, TradeState
from eppark.payments.settle import settle
from eppark.records.errors import Refused
from eppark.stays.models import GateVisit, Resolution, Stay, StayState
from tests.integration.test_gate_loop import Site, opened

pytestmark = pytest.mark.django_db

PLATE = "粤B88888"


def paid(order: Order, **changes: object) -> TradeResult:
    fields: dict[str, object] = {
        "out_trade_no": order.out_trade_no,
        "state": TradeState.SUCCESS,
        "transaction_id": "4200000001",
        "amount": order.amount,
        "payer": "o-openid-1",
    }
    fields.update(changes)
    return TradeResult(**fields)  # type: ignore[arg-type]


def parked(site: Site, hours: float) -> Stay:
    return Stay.objects.create(
        lot=site.lot,
        plate=PLATE,
        entered_as="temp",
        entered_at=timezone.now() - timedelta(hours=hours),
        entry_gate=site.gates["entry"],
    )


def exit_commands(site: Site) -> list[Command]:
    gate_cameras = [site.cameras["exit"]]
    return list(Command.objects.filter(robot=site.robots["exit"]).order_by("pk")) + list(
        Command.objects.filter(camera__in=gate_cameras).order_by("pk")
    )


def test_a_car_waiting_at_the_exit_pays_and_the_gate_opens_with_a_goodbye() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    assert not opened(site.push("exit", PLATE))
    visit = GateVisit.objects.get(scenario="exit.temp_unpaid")
    assert visit.resolved_at is None

    order = placing.order_for_stay(stay, timezone.now(), visit=visit)
    assert order is not None
    assert (order.kind, order.amount, order.state) == ("temp", 1100, OrderState.CREATED)
    assert order.expires_at is not None
    assert order.priced_at is not None
    visit.refresh_from_db()
    assert visit.resolution == Resolution.DRIVER_ACTED  # the manual's expected action
    again = placing.order_for_stay(stay, timezone.now(), visit=visit)
    assert again is not None
    assert again.pk == order.pk

    before = Command.objects.count()
    result = settle(paid(order), provider="sandbox", channel="wechat", now=timezone.now())
    assert (result.verdict, result.opened) == (Verdict.PAYS, True)
    order.refresh_from_db()
    assert (order.state, order.paid_amount, order.transaction_id) == ("paid", 1100, "4200000001")
    assert order.payer == "o-openid-1"
    visit.refresh_from_db()
    assert visit.opened
    stay.refresh_from_db()
    assert (stay.state, stay.exit_gate_id, stay.paid) == (
        StayState.LEFT,
        site.gates["exit"].pk,
        1100,
    )
    new = list(Command.objects.order_by("pk"))[before:]
    present = [c for c in new if c.cmd == "present"]
    assert [p.args["voice"] for p in present] == ["一路平安"]
    assert present[0].args["display"] == {"kind": "face", "face": "smile"}
    assert [c.cmd for c in new if c.cmd == "open"] == ["open"]

    # the provider says it again: nothing changes
    count = Command.objects.count()
    duplicate = settle(paid(order), provider="sandbox", channel="wechat", now=timezone.now())
    assert duplicate.verdict is Verdict.DUPLICATE
    assert Command.objects.count() == count


def test_a_wrong_amount_is_flagged_and_never_paid() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    site.push("exit", PLATE)
    order = placing.order_for_stay(stay, timezone.now())
    assert order is not None
    count = Command.objects.count()
    result = settle(paid(order, amount=1), provider="sandbox", channel="wechat", now=timezone.now())
    assert result.verdict is Verdict.MISMATCH
    order.refresh_from_db()
    assert order.state == OrderState.CREATED
    assert order.needs_review
    assert "1 fen" in order.review_note
    assert Command.objects.count() == count
    assert Stay.objects.get().exited_at is None


def test_paying_inside_the_lot_lets_the_car_out_free_within_the_grace() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    order = placing.order_for_stay(stay, timezone.now())
    assert order is not None
    result = settle(paid(order), provider="sandbox", channel="alipay", now=timezone.now())
    assert (result.verdict, result.opened) == (Verdict.PAYS, False)  # no car at a gate
    assert placing.stay_charge(stay, timezone.now()).due == 0
    assert placing.order_for_stay(stay, timezone.now()) is None  # nothing more to pay
    assert opened(site.push("exit", PLATE))
    assert GateVisit.objects.get().scenario == "exit.temp_paid"


def test_an_unknown_order_and_a_failed_trade_change_nothing() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    order = placing.order_for_stay(stay, timezone.now())
    assert order is not None
    unknown = settle(
        paid(order, out_trade_no="EPT-NOT-OURS"),
        provider="sandbox",
        channel="wechat",
        now=timezone.now(),
    )
    assert unknown.verdict is Verdict.UNKNOWN_ORDER
    failed = settle(
        paid(order, state=TradeState.PAYERROR),
        provider="sandbox",
        channel="wechat",
        now=timezone.now(),
    )
    assert failed.verdict is Verdict.NOT_PAID
    assert Order.objects.get(pk=order.pk).state == OrderState.CREATED


def test_money_taken_for_a_closed_order_pays_it_and_is_flagged() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    order = placing.order_for_stay(stay, timezone.now())
    assert order is not None
    Order.objects.filter(pk=order.pk).update(state=OrderState.CLOSED)
    result = settle(paid(order), provider="sandbox", channel="wechat", now=timezone.now())
    assert result.verdict is Verdict.PAYS_LATE
    order.refresh_from_db()
    assert order.state == OrderState.PAID
    assert order.needs_review


def test_a_new_price_closes_the_old_unpaid_order() -> None:
    site = Site(confirm=False)
    stay = parked(site, 2.5)
    now = timezone.now()
    first = placing.order_for_stay(stay, now)
    later = placing.order_for_stay(stay, now + timedelta(minutes=61))  # one more unit, expired
    assert first is not None
    assert later is not None
    assert later.pk != first.pk
    assert later.amount == first.amount + 300
    assert Order.objects.get(pk=first.pk).state == OrderState.CLOSED


def test_an_expired_pass_renews_from_its_old_end_and_the_entry_opens() -> None:
    site = Site(confirm=True)
    monthly = site.give_pass(PLATE, days=-5)  # expired five days ago: renewable
    old_end = monthly.valid_until
    site.lot.monthly_price = 30000
    site.lot.save()
    assert not opened(site.push("entry", PLATE))
    visit = GateVisit.objects.get()
    assert visit.scenario == "entry.monthly_expired"
    monthly = MonthlyPass.objects.select_related("lot").get(pk=monthly.pk)
    options = [(o.months, o.price) for o in placing.renewal_options(monthly)]
    assert options[0] == (1, 30000)
    order = placing.order_for_renewal(monthly, 3, timezone.now(), plate=PLATE, visit=visit)
    assert (order.kind, order.amount, order.months) == ("monthly", 90000, 3)
    result = settle(paid(order), provider="sandbox", channel="wechat", now=timezone.now())
    assert (result.verdict, result.opened) == (Verdict.PAYS, True)
    monthly.refresh_from_db()
    assert monthly.valid_until > old_end + timedelta(days=88)
    assert monthly.valid_until < old_end + timedelta(days=93)
    stay = Stay.objects.get(plate=PLATE)
    assert stay.entered_as == "pass"
    [present] = list(Command.objects.filter(robot=site.robots["entry"]).order_by("pk"))[-1:]
    assert present.args["voice"] == "欢迎回家"


def test_a_lapsed_pass_cannot_be_renewed_and_an_unknown_option_is_refused() -> None:
    site = Site(confirm=True)
    site.lot.monthly_price = 30000
    site.lot.save()
    lapsed = MonthlyPass.objects.select_related("lot").get(pk=site.give_pass(PLATE, days=-10).pk)
    with pytest.raises(Refused):
        placing.order_for_renewal(lapsed, 1, timezone.now())
    running = MonthlyPass.objects.select_related("lot").get(
        pk=site.give_pass("粤B77777", days=3).pk
    )
    with pytest.raises(Refused):
        placing.order_for_renewal(running, 5, timezone.now())
    assert not Order.objects.exists()
